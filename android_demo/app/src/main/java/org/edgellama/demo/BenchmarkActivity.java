package org.edgellama.demo;

import android.app.Activity;
import android.os.Build;
import android.os.Bundle;
import android.widget.TextView;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.edgellama.demo.core.BenchmarkReport;
import org.edgellama.demo.core.BundleFinder;
import org.edgellama.demo.core.GenerationStats;
import org.edgellama.demo.core.HashVerifier;
import org.edgellama.demo.core.ManifestException;
import org.edgellama.demo.core.PeakMemory;
import org.edgellama.demo.core.RuntimeEntry;
import org.edgellama.demo.engine.EngineException;
import org.edgellama.demo.engine.Engines;
import org.edgellama.demo.engine.LlmEngine;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Benchmark without a screen tap: verifies bundle NAME, loads the runtime (the manifest's first, or
 * the extra `runtime` type), runs `runs` generations of gen_len tokens after a prompt of about
 * prompt_len tokens, and writes files/benchmark_results.json (or {"error": ...} when it cannot).
 */
public class BenchmarkActivity extends Activity {
    static final String RESULTS = "benchmark_results.json";

    private TextView status;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_benchmark);
        status = findViewById(R.id.bench_status);
        final String name = getIntent().getStringExtra("bundle");
        final String runtime = getIntent().getStringExtra("runtime");
        final int promptLen = getIntent().getIntExtra("prompt_len", 128);
        final int genLen = getIntent().getIntExtra("gen_len", 128);
        final int runs = getIntent().getIntExtra("runs", 5);
        new Thread(() -> {
            JSONObject result;
            try {
                result = run(name, runtime, promptLen, genLen, runs);
            } catch (ManifestException | EngineException | JSONException ex) {
                result = error(ex.getMessage());
            }
            final String text = write(result);
            runOnUiThread(() -> status.setText(text));
        }, "benchmark").start();
    }

    private JSONObject run(String name, String runtime, int promptLen, int genLen, int runs)
            throws ManifestException, EngineException, JSONException {
        if (name == null) {
            throw new ManifestException("no bundle given; start with --es bundle NAME");
        }
        BundleFinder.Found found = BundleFinder.byName(Bundles.roots(this), name);
        if (found == null || found.manifest == null) {
            throw new ManifestException(found == null ? "bundle " + name + " not found under " + Bundles.roots(this) : found.problem);
        }
        RuntimeEntry entry = pick(found, runtime);
        HashVerifier.verify(found.dir, found.manifest, null);
        LlmEngine engine = Engines.create(found.dir, found.manifest, entry);
        try {
            double loadMs = engine.load();
            String prompt = BenchmarkReport.syntheticPrompt(promptLen);
            List<GenerationStats> results = new ArrayList<GenerationStats>();
            for (int i = 0; i < runs; i++) {
                final int run = i + 1;
                runOnUiThread(() -> status.setText("run " + run + " of " + runs + "…"));
                results.add(engine.generate(prompt, genLen, text -> { }));
            }
            return BenchmarkReport.build(name, entry, promptLen, genLen, device(), results, PeakMemory.currentProcessKb())
                    .put("load_ms", loadMs);
        } finally {
            engine.close();
        }
    }

    private static RuntimeEntry pick(BundleFinder.Found found, String type) throws ManifestException {
        for (RuntimeEntry e : found.manifest.runtimes) {
            if (type == null || e.type.equals(type)) {
                return e;
            }
        }
        throw new ManifestException("bundle " + found.manifest.name + " has no " + type + " runtime");
    }

    private static Map<String, String> device() {
        Map<String, String> d = new LinkedHashMap<String, String>();
        d.put("manufacturer", Build.MANUFACTURER);
        d.put("model", Build.MODEL);
        d.put("soc", Build.VERSION.SDK_INT >= Build.VERSION_CODES.S ? Build.SOC_MANUFACTURER + " " + Build.SOC_MODEL : Build.HARDWARE);
        d.put("android", Build.VERSION.RELEASE + " (API " + Build.VERSION.SDK_INT + ")");
        return d;
    }

    private static JSONObject error(String message) {
        try {
            return new JSONObject().put("error", message);
        } catch (JSONException ex) {
            throw new IllegalStateException(ex);
        }
    }

    /** Writes files/benchmark_results.json through a temporary name, so a reader never sees half of it. */
    private String write(JSONObject result) {
        File tmp = new File(getFilesDir(), RESULTS + ".tmp");
        String text;
        try {
            text = result.toString(1);
        } catch (JSONException ex) {
            text = result.toString();
        }
        try (OutputStream out = new FileOutputStream(tmp)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        } catch (IOException ex) {
            return "could not write " + tmp + ": " + ex.getMessage();
        }
        if (!tmp.renameTo(new File(getFilesDir(), RESULTS))) {
            return "could not rename " + tmp;
        }
        return text;
    }
}
