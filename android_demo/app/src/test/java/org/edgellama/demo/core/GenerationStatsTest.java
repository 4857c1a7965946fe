package org.edgellama.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class GenerationStatsTest {
    /** The shape of LlmCallback.onStats' JSON (ExecuTorch extension/llm/runner/stats.h). */
    private static final String STATS = "{\"prompt_tokens\":100,\"generated_tokens\":64,"
            + "\"model_load_start_ms\":1000,\"model_load_end_ms\":1450,\"inference_start_ms\":2000,"
            + "\"token_encode_end_ms\":2005,\"prompt_eval_end_ms\":2200,\"first_token_ms\":2210,"
            + "\"aggregate_sampling_time_ms\":12,\"inference_end_ms\":3800,\"SCALING_FACTOR_UNITS_PER_SECOND\":1000}";

    @Test
    public void ratesFromExecuTorchTimestamps() throws Exception {
        GenerationStats s = GenerationStats.fromExecuTorchJson(STATS);
        assertEquals(100, s.promptTokens);
        assertEquals(64, s.generatedTokens);
        assertEquals(450, s.loadMs, 1e-9);
        assertEquals(210, s.ttftMs, 1e-9);
        assertEquals(500.0, s.prefillTokPerSec, 1e-9); // 100 tokens in 200 ms
        assertEquals(40.0, s.decodeTokPerSec, 1e-9); // 64 tokens in 1600 ms
        assertTrue(s.summary(), s.summary().contains("prefill 500.0 tok/s · decode 40.0 tok/s"));
    }

    @Test
    public void explicitRatesWin() throws Exception {
        String json = STATS.replace("}", ",\"prefill_token_per_sec\":321.5,\"decode_token_per_sec\":12.25}");
        GenerationStats s = GenerationStats.fromExecuTorchJson(json);
        assertEquals(321.5, s.prefillTokPerSec, 1e-9);
        assertEquals(12.25, s.decodeTokPerSec, 1e-9);
    }

    @Test(expected = ManifestException.class)
    public void missingFieldsAreAnError() throws Exception {
        GenerationStats.fromExecuTorchJson("{\"prompt_tokens\":3}");
    }

    @Test
    public void liveRateCountsDecodeAfterTheFirstToken() {
        LiveRate r = new LiveRate(0);
        r.onToken(50_000_000L); // first token at 50 ms
        r.onToken(150_000_000L);
        r.onToken(250_000_000L); // 2 more tokens in 200 ms
        assertEquals(50, r.ttftMs(), 1e-9);
        assertEquals(10.0, r.decodeTokPerSec(), 1e-9);
    }
}
