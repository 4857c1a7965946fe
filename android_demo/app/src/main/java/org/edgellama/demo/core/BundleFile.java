package org.edgellama.demo.core;

/** One file of a bundle, as its manifest lists it. */
public final class BundleFile {
    public final String path;
    public final long bytes;
    public final String sha256;

    public BundleFile(String path, long bytes, String sha256) {
        this.path = path;
        this.bytes = bytes;
        this.sha256 = sha256;
    }
}
