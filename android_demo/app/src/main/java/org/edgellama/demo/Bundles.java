package org.edgellama.demo;

import android.content.Context;
import java.io.File;
import java.util.Arrays;
import java.util.List;

/** Where the app looks for bundles. */
final class Bundles {
    /** `edgellama push` writes here (adb's shell user can; the app reads the 664 files). */
    static final File PUSHED = new File("/data/local/tmp/edgellama");

    private Bundles() {}

    static List<File> roots(Context context) {
        return Arrays.asList(PUSHED, context.getExternalFilesDir(null));
    }
}
