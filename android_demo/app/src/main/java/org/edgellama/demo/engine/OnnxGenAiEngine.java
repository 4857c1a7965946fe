package org.edgellama.demo.engine;

import ai.onnxruntime.genai.GenAIException;
import ai.onnxruntime.genai.Generator;
import ai.onnxruntime.genai.GeneratorParams;
import ai.onnxruntime.genai.Model;
import ai.onnxruntime.genai.Sequences;
import ai.onnxruntime.genai.Tokenizer;
import ai.onnxruntime.genai.TokenizerStream;
import java.io.File;
import org.edgellama.demo.core.BundleManifest;
import org.edgellama.demo.core.GenerationStats;
import org.edgellama.demo.core.RuntimeEntry;

/** ONNX Runtime GenAI (com.microsoft.onnxruntime:onnxruntime-genai-android) over the bundle's ONNX folder. */
final class OnnxGenAiEngine implements LlmEngine {
    private final File bundleDir;
    private final BundleManifest manifest;
    private final RuntimeEntry entry;
    private Model model;
    private Tokenizer tokenizer;
    private volatile boolean stopRequested;

    OnnxGenAiEngine(File bundleDir, BundleManifest manifest, RuntimeEntry entry) {
        this.bundleDir = bundleDir;
        this.manifest = manifest;
        this.entry = entry;
    }

    @Override
    public double load() throws EngineException {
        long t0 = System.nanoTime();
        try {
            // genai reads genai_config.json, the model and tokenizer.json from the folder itself.
            model = new Model(entry.folder(bundleDir).getPath());
            tokenizer = new Tokenizer(model);
        } catch (GenAIException | RuntimeException ex) {
            throw new EngineException("ONNX Runtime GenAI could not load " + entry.folder(bundleDir) + ": " + ex.getMessage(), ex);
        }
        return (System.nanoTime() - t0) / 1e6;
    }

    @Override
    public GenerationStats generate(String prompt, int maxNewTokens, TokenListener listener) throws EngineException {
        stopRequested = false;
        long start = System.nanoTime();
        try (Sequences input = tokenizer.encode(prompt);
             GeneratorParams params = new GeneratorParams(model);
             TokenizerStream stream = tokenizer.createStream()) {
            int promptTokens = input.getSequence(0).length;
            params.setSearchOption("max_length", Math.min(promptTokens + maxNewTokens, manifest.contextLength));
            if (manifest.temperature > 0) {
                params.setSearchOption("do_sample", true);
                params.setSearchOption("temperature", manifest.temperature);
            } else {
                params.setSearchOption("do_sample", false);
            }
            try (Generator generator = new Generator(model, params)) {
                generator.appendTokenSequences(input); // runs the prompt (prefill)
                long prefilled = System.nanoTime();
                long first = -1;
                int generated = 0;
                while (!generator.isDone() && !stopRequested) {
                    generator.generateNextToken();
                    // The stream holds back partial UTF-8 until a whole character is there.
                    listener.onToken(stream.decode(generator.getLastTokenInSequence(0)));
                    if (generated++ == 0) {
                        first = System.nanoTime();
                    }
                }
                long end = System.nanoTime();
                return new GenerationStats(promptTokens, generated, 0, first < 0 ? 0 : (first - start) / 1e6,
                        GenerationStats.rate(promptTokens, (prefilled - start) / 1e6),
                        GenerationStats.rate(generated, (end - prefilled) / 1e6));
            }
        } catch (GenAIException | RuntimeException ex) {
            throw new EngineException("ONNX Runtime GenAI generate failed: " + ex.getMessage(), ex);
        }
    }

    @Override
    public void stop() {
        stopRequested = true;
    }

    @Override
    public void close() {
        if (tokenizer != null) {
            tokenizer.close();
        }
        if (model != null) {
            model.close();
        }
        tokenizer = null;
        model = null;
    }
}
