package org.edgellama.demo.engine;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.edgellama.demo.core.BundleManifest;
import org.edgellama.demo.core.GenerationStats;
import org.edgellama.demo.core.ManifestException;
import org.edgellama.demo.core.RuntimeEntry;
import org.pytorch.executorch.ExecuTorchRuntime;
import org.pytorch.executorch.extension.llm.LlmCallback;
import org.pytorch.executorch.extension.llm.LlmModule;

/** ExecuTorch's LlmModule (org.pytorch:executorch-android) over the bundle's .pte and tokenizer. */
final class ExecuTorchEngine implements LlmEngine {
    private final File bundleDir;
    private final BundleManifest manifest;
    private final RuntimeEntry entry;
    private LlmModule module;

    ExecuTorchEngine(File bundleDir, BundleManifest manifest, RuntimeEntry entry) {
        this.bundleDir = bundleDir;
        this.manifest = manifest;
        this.entry = entry;
    }

    @Override
    public double load() throws EngineException {
        checkKernels();
        long t0 = System.nanoTime();
        try {
            module = new LlmModule(entry.model(bundleDir).getPath(), entry.tokenizer(bundleDir).getPath(), manifest.temperature);
            // load() returns an error code up to executorch 1.2 and throws from 1.3.1; both are handled.
            int status = module.load();
            if (status != 0) {
                throw new EngineException("ExecuTorch could not load " + entry.model(bundleDir) + " (error " + status + ")");
            }
        } catch (RuntimeException ex) {
            throw new EngineException("ExecuTorch could not load " + entry.model(bundleDir) + ": " + ex.getMessage(), ex);
        }
        return (System.nanoTime() - t0) / 1e6;
    }

    /** The bundle lists the operators the .pte runs outside its delegates; say which this AAR lacks. */
    private void checkKernels() throws EngineException {
        Set<String> registered = new HashSet<String>(Arrays.asList(ExecuTorchRuntime.getRegisteredOps()));
        List<String> missing = new ArrayList<String>();
        for (String op : entry.portableOps) {
            if (!registered.contains(op)) {
                missing.add(op);
            }
        }
        if (!missing.isEmpty()) {
            throw new EngineException("this app's ExecuTorch has no kernel for " + missing
                    + "; rebuild the AAR with them or export with a recipe that delegates them");
        }
        if (!Arrays.asList(ExecuTorchRuntime.getRegisteredBackends()).contains("XnnpackBackend")) {
            throw new EngineException("this app's ExecuTorch has no XNNPACK backend; use the stock executorch-android AAR");
        }
    }

    @Override
    public GenerationStats generate(String prompt, int maxNewTokens, final TokenListener listener) throws EngineException {
        final String[] stats = new String[1];
        LlmCallback callback = new LlmCallback() {
            @Override
            public void onResult(String text) {
                listener.onToken(text);
            }

            @Override
            public void onStats(String json) {
                stats[0] = json;
            }
        };
        // seqLen counts the prompt too; the prompt's token count is unknown here, so allow the whole
        // context and stop at maxNewTokens through the prompt-independent budget below.
        int seqLen = Math.min(entry.maxContextLen, manifest.contextLength);
        try {
            module.resetContext(); // every chat message and benchmark run is a fresh one-turn prompt
            int status = module.generate(prompt, seqLen, new Budget(callback, maxNewTokens, module), false);
            if (status != 0) {
                throw new EngineException("ExecuTorch generate failed (error " + status + ")");
            }
        } catch (RuntimeException ex) {
            throw new EngineException("ExecuTorch generate failed: " + ex.getMessage(), ex);
        }
        if (stats[0] == null) {
            throw new EngineException("ExecuTorch sent no stats for the generation");
        }
        try {
            return GenerationStats.fromExecuTorchJson(stats[0]);
        } catch (ManifestException ex) {
            throw new EngineException(ex.getMessage(), ex);
        }
    }

    /** Passes results on and stops the module after maxNewTokens pieces. */
    private static final class Budget implements LlmCallback {
        private final LlmCallback inner;
        private final LlmModule module;
        private int left;

        Budget(LlmCallback inner, int maxNewTokens, LlmModule module) {
            this.inner = inner;
            this.left = maxNewTokens;
            this.module = module;
        }

        @Override
        public void onResult(String text) {
            inner.onResult(text);
            if (--left == 0) {
                module.stop();
            }
        }

        @Override
        public void onStats(String json) {
            inner.onStats(json);
        }
    }

    @Override
    public void stop() {
        if (module != null) {
            module.stop();
        }
    }

    @Override
    public void close() {
        if (module != null) {
            module.resetNative();
            module = null;
        }
    }
}
