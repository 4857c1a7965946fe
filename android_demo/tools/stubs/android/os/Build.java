// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/os/Build) that the app calls; no behaviour.
package android.os;

public class Build {
    public static final String MODEL = null;
    public static final String MANUFACTURER = null;
    public static final String HARDWARE = null;
    public static final String BOARD = null;
    /** API 31+. */
    public static final String SOC_MODEL = null;
    /** API 31+. */
    public static final String SOC_MANUFACTURER = null;

    public static class VERSION {
        public static final int SDK_INT = 0;
        public static final String RELEASE = null;
    }

    public static class VERSION_CODES {
        public static final int S = 31;
    }
}
