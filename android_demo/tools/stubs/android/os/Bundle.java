// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/os/Bundle) that the app calls; no behaviour.
package android.os;

public final class Bundle {
}
