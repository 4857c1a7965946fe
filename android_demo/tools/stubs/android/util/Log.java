// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/util/Log) that the app calls; no behaviour.
package android.util;

public final class Log {
    public static int i(String tag, String msg) { throw new UnsupportedOperationException("stub"); }
    public static int e(String tag, String msg) { throw new UnsupportedOperationException("stub"); }
    public static int e(String tag, String msg, Throwable tr) { throw new UnsupportedOperationException("stub"); }
}
