// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/content/Intent) that the app calls; no behaviour.
package android.content;

public class Intent {
    public Intent(Context packageContext, Class<?> cls) { throw new UnsupportedOperationException("stub"); }
    public Intent putExtra(String name, String value) { throw new UnsupportedOperationException("stub"); }
    public Intent putExtra(String name, int value) { throw new UnsupportedOperationException("stub"); }
    public String getStringExtra(String name) { throw new UnsupportedOperationException("stub"); }
    public int getIntExtra(String name, int defaultValue) { throw new UnsupportedOperationException("stub"); }
}
