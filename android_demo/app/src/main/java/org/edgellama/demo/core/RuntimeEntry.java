package org.edgellama.demo.core;

import static org.edgellama.demo.core.ManifestFields.*;

import java.io.File;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** One entry of the manifest's `runtimes`: which engine runs which files. */
public final class RuntimeEntry {
    public final String type;
    public final String folder;
    public final String modelFile;
    public final String tokenizerFile;
    public final String backend;
    public final String scheme;
    public final int groupSize;
    public final String recipe;
    public final int threads;
    public final int maxSeqLen;
    public final int maxContextLen;
    /** executorch: operators the .pte runs outside its delegates; empty for other runtimes. */
    public final List<String> portableOps;
    /** onnxruntime: the external weights file; null for other runtimes. */
    public final String dataFile;
    /** `edgellama parity` summary: verdict, then reference name -> "top-1 0.92, KL 0.02"; null if none. */
    public final String parityVerdict;
    public final String parityCreated;
    public final Map<String, String> parityReferences;

    RuntimeEntry(JSONObject o) throws JSONException {
        type = o.getString(TYPE);
        folder = o.getString(FOLDER);
        modelFile = o.getString(MODEL_FILE);
        tokenizerFile = o.getString(TOKENIZER_FILE);
        backend = o.getString(BACKEND);
        JSONObject q = o.getJSONObject(QUANTIZATION);
        scheme = q.getString(SCHEME);
        groupSize = q.getInt(GROUP_SIZE);
        recipe = o.isNull(RECIPE) ? null : o.getString(RECIPE);
        threads = o.getInt(THREADS);
        maxSeqLen = o.getInt(MAX_SEQ_LEN);
        maxContextLen = o.getInt(MAX_CONTEXT_LEN);
        List<String> ops = new ArrayList<String>();
        JSONArray a = o.optJSONArray(PORTABLE_OPS);
        for (int i = 0; a != null && i < a.length(); i++) {
            ops.add(a.getString(i));
        }
        portableOps = Collections.unmodifiableList(ops);
        dataFile = o.has(DATA_FILE) ? o.getString(DATA_FILE) : null;
        JSONObject parity = o.optJSONObject(PARITY);
        Map<String, String> refs = new LinkedHashMap<String, String>();
        if (parity != null) {
            JSONObject r = parity.getJSONObject(REFERENCES);
            JSONArray names = r.names();
            for (int i = 0; names != null && i < names.length(); i++) {
                JSONObject m = r.getJSONObject(names.getString(i));
                refs.put(names.getString(i), String.format(java.util.Locale.ROOT, "top-1 %.3f, KL %.4f, ppl x%.3f",
                        m.getDouble(TOP1_AGREEMENT), m.getDouble(KL_MEAN), m.getDouble(PPL_RATIO)));
            }
        }
        parityVerdict = parity == null ? null : parity.getString(VERDICT);
        parityCreated = parity == null ? null : parity.getString(CREATED);
        parityReferences = Collections.unmodifiableMap(refs);
    }

    public File model(File bundleDir) {
        return new File(new File(bundleDir, folder), modelFile);
    }

    public File tokenizer(File bundleDir) {
        return new File(new File(bundleDir, folder), tokenizerFile);
    }

    public File folder(File bundleDir) {
        return new File(bundleDir, folder);
    }

    /** "executorch · xnnpack · 8da4w g32". */
    public String label() {
        return type + " · " + backend + " · " + scheme + (groupSize > 0 ? " g" + groupSize : "");
    }
}
