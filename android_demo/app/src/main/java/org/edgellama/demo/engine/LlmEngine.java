package org.edgellama.demo.engine;

import org.edgellama.demo.core.GenerationStats;

/**
 * One runtime behind one small interface, so the screens do not know which runs the bundle. Calls
 * block; run them off the UI thread. One generation at a time.
 */
public interface LlmEngine {
    /** Receives each piece of text as it is decoded. */
    interface TokenListener {
        void onToken(String text);
    }

    /** Loads the model; returns the time it took in ms. Throws with the reason a runtime cannot load it. */
    double load() throws EngineException;

    /** Generates up to maxNewTokens after the (already chat-formatted) prompt, streaming text to listener. */
    GenerationStats generate(String prompt, int maxNewTokens, TokenListener listener) throws EngineException;

    /** Asks a running generate() to return early (from any thread). */
    void stop();

    /** Frees the native model. */
    void close();
}
