package org.edgellama.demo.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** Checks every file a manifest lists (size, then sha256) before any runtime opens one. */
public final class HashVerifier {
    /** Called after each file, so a screen can show progress on a multi-GB bundle. */
    public interface Progress {
        void onFile(BundleFile file, int done, int total);
    }

    private HashVerifier() {}

    public static void verify(File bundleDir, BundleManifest manifest, Progress progress) throws ManifestException {
        int done = 0;
        for (BundleFile f : manifest.files) {
            File file = new File(bundleDir, f.path);
            if (!file.isFile()) {
                throw new ManifestException(file + ": listed in manifest.json but missing; push the bundle again");
            }
            if (file.length() != f.bytes) {
                throw new ManifestException(file + ": " + file.length() + " bytes, manifest.json says " + f.bytes
                        + "; push the bundle again");
            }
            String actual = sha256(file);
            if (!actual.equals(f.sha256)) {
                throw new ManifestException(file + ": sha256 differs from manifest.json; the file is corrupted — push the bundle again");
            }
            if (progress != null) {
                progress.onFile(f, ++done, manifest.files.size());
            }
        }
    }

    public static String sha256(File file) throws ManifestException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException ex) {
            throw new IllegalStateException(ex); // every Java platform has SHA-256
        }
        byte[] buffer = new byte[1 << 20];
        try (InputStream in = new FileInputStream(file)) {
            for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
                digest.update(buffer, 0, n);
            }
        } catch (IOException ex) {
            throw new ManifestException(file + ": cannot read (" + ex.getMessage() + ")");
        }
        StringBuilder hex = new StringBuilder(64);
        for (byte b : digest.digest()) {
            hex.append(String.format("%02x", b & 0xff));
        }
        return hex.toString();
    }
}
