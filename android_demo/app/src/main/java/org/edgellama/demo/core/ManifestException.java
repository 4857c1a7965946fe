package org.edgellama.demo.core;

/** A bundle the app cannot use; the message says what is wrong and what to do. */
public class ManifestException extends Exception {
    private static final long serialVersionUID = 1L;

    public ManifestException(String message) {
        super(message);
    }
}
