// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/ListAdapter) that the app calls; no behaviour.
package android.widget;

public interface ListAdapter {
}
