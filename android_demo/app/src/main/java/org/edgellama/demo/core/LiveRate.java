package org.edgellama.demo.core;

import java.util.Locale;

/** Tok/s while tokens stream in: time to first token, then decode rate over the tokens after it. */
public final class LiveRate {
    private final long startNanos;
    private long firstNanos = -1;
    private long lastNanos;
    private int tokens;

    public LiveRate(long startNanos) {
        this.startNanos = startNanos;
    }

    public void onToken(long nowNanos) {
        if (tokens++ == 0) {
            firstNanos = nowNanos;
        }
        lastNanos = nowNanos;
    }

    public int tokens() {
        return tokens;
    }

    public double ttftMs() {
        return firstNanos < 0 ? 0 : (firstNanos - startNanos) / 1e6;
    }

    public double decodeTokPerSec() {
        return tokens < 2 ? 0 : GenerationStats.rate(tokens - 1, (lastNanos - firstNanos) / 1e6);
    }

    public String summary() {
        return String.format(Locale.ROOT, "TTFT %.0f ms · decode %.1f tok/s · %d tokens", ttftMs(), decodeTokPerSec(), tokens);
    }
}
