// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/content/Context) that the app calls; no behaviour.
package android.content;

public abstract class Context {
    public java.io.File getFilesDir() { throw new UnsupportedOperationException("stub"); }
    public java.io.File getExternalFilesDir(String type) { throw new UnsupportedOperationException("stub"); }
    public void startActivity(Intent intent) { throw new UnsupportedOperationException("stub"); }
}
