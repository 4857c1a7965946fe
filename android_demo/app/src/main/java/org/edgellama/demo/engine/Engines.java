package org.edgellama.demo.engine;

import java.io.File;
import java.util.LinkedHashMap;
import java.util.Map;
import org.edgellama.demo.core.BundleManifest;
import org.edgellama.demo.core.RuntimeEntry;

/**
 * Which engine runs a manifest's runtime entry, by its `type`. A new runtime (QNN, ...) is one more
 * factory here, mirroring edgellama/android/runtimes.py on the Python side.
 */
public final class Engines {
    interface Factory {
        LlmEngine create(File bundleDir, BundleManifest manifest, RuntimeEntry entry);
    }

    private static final Map<String, Factory> FACTORIES = new LinkedHashMap<String, Factory>();

    static {
        FACTORIES.put("executorch", new Factory() {
            @Override
            public LlmEngine create(File dir, BundleManifest m, RuntimeEntry e) {
                return new ExecuTorchEngine(dir, m, e);
            }
        });
        FACTORIES.put("onnxruntime", new Factory() {
            @Override
            public LlmEngine create(File dir, BundleManifest m, RuntimeEntry e) {
                return new OnnxGenAiEngine(dir, m, e);
            }
        });
    }

    private Engines() {}

    public static LlmEngine create(File bundleDir, BundleManifest manifest, RuntimeEntry entry) throws EngineException {
        Factory f = FACTORIES.get(entry.type);
        if (f == null) {
            throw new EngineException("runtime '" + entry.type + "' is not in this app (it runs " + FACTORIES.keySet()
                    + "); pick another runtime of the bundle or update the app");
        }
        return f.create(bundleDir, manifest, entry);
    }
}
