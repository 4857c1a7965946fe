package org.edgellama.demo.core;

import java.util.Locale;
import org.json.JSONException;
import org.json.JSONObject;

/** One generation's numbers, from ExecuTorch's stats JSON or measured around ONNX Runtime GenAI. */
public final class GenerationStats {
    public final int promptTokens;
    public final int generatedTokens;
    /** 0 when the model was already loaded. */
    public final double loadMs;
    public final double ttftMs;
    public final double prefillTokPerSec;
    public final double decodeTokPerSec;

    public GenerationStats(int promptTokens, int generatedTokens, double loadMs, double ttftMs,
                           double prefillTokPerSec, double decodeTokPerSec) {
        this.promptTokens = promptTokens;
        this.generatedTokens = generatedTokens;
        this.loadMs = loadMs;
        this.ttftMs = ttftMs;
        this.prefillTokPerSec = prefillTokPerSec;
        this.decodeTokPerSec = decodeTokPerSec;
    }

    /**
     * LlmCallback.onStats' JSON (ExecuTorch extension/llm/runner/stats.h): token counts and
     * millisecond timestamps. Rates are computed as stats.h's own report does (prefill: prompt tokens
     * over inference start -> prompt evaluated; decode: generated tokens over prompt evaluated -> end);
     * explicit prefill_token_per_sec / decode_token_per_sec fields win when a runtime sends them.
     */
    public static GenerationStats fromExecuTorchJson(String json) throws ManifestException {
        try {
            JSONObject o = new JSONObject(json);
            int prompt = o.getInt("prompt_tokens");
            int generated = o.getInt("generated_tokens");
            double start = o.getDouble("inference_start_ms");
            double promptDone = o.getDouble("prompt_eval_end_ms");
            double first = o.getDouble("first_token_ms");
            double end = o.getDouble("inference_end_ms");
            double load = o.optDouble("model_load_end_ms", 0) - o.optDouble("model_load_start_ms", 0);
            double prefill = o.has("prefill_token_per_sec") ? o.getDouble("prefill_token_per_sec") : rate(prompt, promptDone - start);
            double decode = o.has("decode_token_per_sec") ? o.getDouble("decode_token_per_sec") : rate(generated, end - promptDone);
            return new GenerationStats(prompt, generated, load, first - start, prefill, decode);
        } catch (JSONException ex) {
            throw new ManifestException("ExecuTorch stats: " + ex.getMessage());
        }
    }

    /** Tokens per second over a span in milliseconds (0 for an empty span). */
    public static double rate(int tokens, double ms) {
        return ms > 0 ? tokens * 1000.0 / ms : 0;
    }

    public JSONObject toJson() {
        try {
            return new JSONObject()
                    .put("prompt_tokens", promptTokens).put("generated_tokens", generatedTokens)
                    .put("load_ms", loadMs).put("ttft_ms", ttftMs)
                    .put("prefill_tok_s", prefillTokPerSec).put("decode_tok_s", decodeTokPerSec);
        } catch (JSONException ex) {
            throw new IllegalStateException(ex); // only for NaN/Inf, which rate() never returns
        }
    }

    /** "12 prompt tokens, 64 new · TTFT 85 ms · prefill 310.2 tok/s · decode 41.7 tok/s". */
    public String summary() {
        return String.format(Locale.ROOT, "%d prompt tokens, %d new · TTFT %.0f ms · prefill %.1f tok/s · decode %.1f tok/s",
                promptTokens, generatedTokens, ttftMs, prefillTokPerSec, decodeTokPerSec);
    }
}
