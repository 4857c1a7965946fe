package org.edgellama.demo.core;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** The bundles under a set of folders: every sub-folder holding a manifest.json. */
public final class BundleFinder {
    /** A bundle found on disk: its manifest, or why it cannot be read. */
    public static final class Found {
        public final File dir;
        public final BundleManifest manifest;
        public final String problem;

        Found(File dir, BundleManifest manifest, String problem) {
            this.dir = dir;
            this.manifest = manifest;
            this.problem = problem;
        }
    }

    private BundleFinder() {}

    public static List<Found> find(List<File> roots) {
        List<Found> found = new ArrayList<Found>();
        for (File root : roots) {
            File[] dirs = root == null ? null : root.listFiles();
            if (dirs == null) {
                continue;
            }
            Arrays.sort(dirs);
            for (File dir : dirs) {
                if (!new File(dir, BundleManifest.FILE_NAME).isFile()) {
                    continue; // not a bundle, or a push still under way (manifest.json comes last)
                }
                try {
                    found.add(new Found(dir, BundleManifest.read(dir), null));
                } catch (ManifestException ex) {
                    found.add(new Found(dir, null, ex.getMessage()));
                }
            }
        }
        return found;
    }

    /** The bundle called `name` under the roots, or null. */
    public static Found byName(List<File> roots, String name) {
        for (Found f : find(roots)) {
            if (f.dir.getName().equals(name)) {
                return f;
            }
        }
        return null;
    }
}
