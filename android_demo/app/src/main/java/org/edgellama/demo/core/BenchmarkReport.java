package org.edgellama.demo.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** files/benchmark_results.json: the settings, the device, every run, and medians over the runs. */
public final class BenchmarkReport {
    private BenchmarkReport() {}

    public static JSONObject build(String bundle, RuntimeEntry runtime, int promptLen, int genLen,
                                   Map<String, String> device, List<GenerationStats> runs, long peakMemoryKb)
            throws JSONException {
        JSONArray runArray = new JSONArray();
        for (GenerationStats s : runs) {
            runArray.put(s.toJson());
        }
        JSONObject medians = new JSONObject()
                .put("load_ms", median(runs, 0)).put("ttft_ms", median(runs, 1))
                .put("prefill_tok_s", median(runs, 2)).put("decode_tok_s", median(runs, 3));
        return new JSONObject()
                .put("bundle", bundle).put("runtime", runtime.type).put("backend", runtime.backend)
                .put("scheme", runtime.scheme).put("prompt_len", promptLen).put("gen_len", genLen)
                .put("device", new JSONObject(device)).put("runs", runArray).put("median", medians)
                .put("peak_memory_kb", peakMemoryKb);
    }

    /** Median of one field: 0 load_ms, 1 ttft_ms, 2 prefill tok/s, 3 decode tok/s. */
    static double median(List<GenerationStats> runs, int field) {
        List<Double> v = new ArrayList<Double>();
        for (GenerationStats s : runs) {
            v.add(field == 0 ? s.loadMs : field == 1 ? s.ttftMs : field == 2 ? s.prefillTokPerSec : s.decodeTokPerSec);
        }
        if (v.isEmpty()) {
            return 0;
        }
        Collections.sort(v);
        int n = v.size();
        return n % 2 == 1 ? v.get(n / 2) : (v.get(n / 2 - 1) + v.get(n / 2)) / 2;
    }

    /** A prompt of about `tokens` tokens for any tokenizer: a common word repeated (about one token each). */
    public static String syntheticPrompt(int tokens) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.max(1, tokens - 1); i++) {
            sb.append(i == 0 ? "the" : " the");
        }
        return sb.toString();
    }
}
