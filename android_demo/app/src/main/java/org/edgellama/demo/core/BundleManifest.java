package org.edgellama.demo.core;

import static org.edgellama.demo.core.ManifestFields.*;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** A bundle's manifest.json (edgellama/android/bundle.schema.json), read with Android's org.json. */
public final class BundleManifest {
    public static final String FILE_NAME = "manifest.json";

    public final String name;
    public final String created;
    public final String producer;
    public final String modelName;
    public final String sourceSha256;
    public final String sourceFormat;
    /** -1 when the model has no BOS token. */
    public final int bosId;
    public final List<Integer> eosIds;
    public final boolean addBos;
    public final int contextLength;
    /** The Jinja template as shipped (for display); the app renders with {@link #chatFormat}. */
    public final String chatTemplate;
    public final ChatFormat chatFormat;
    public final float temperature;
    public final int maxNewTokens;
    public final String systemPrompt;
    public final List<BundleFile> files;
    public final List<RuntimeEntry> runtimes;

    private BundleManifest(JSONObject o) throws JSONException, ManifestException {
        int version = o.getInt(FORMAT_VERSION);
        if (version != SUPPORTED_FORMAT_VERSION) {
            throw new ManifestException("format_version " + version + " (this app reads "
                    + SUPPORTED_FORMAT_VERSION + "); update the app or bundle again with a matching edgellama");
        }
        name = o.getString(NAME);
        created = o.getString(CREATED);
        producer = o.getString(PRODUCER);
        JSONObject m = o.getJSONObject(MODEL);
        modelName = m.getString(NAME);
        sourceSha256 = m.getString(SOURCE_SHA256);
        sourceFormat = m.getString(SOURCE_FORMAT);
        bosId = m.isNull(BOS_ID) ? -1 : m.getInt(BOS_ID);
        List<Integer> eos = new ArrayList<Integer>();
        JSONArray e = m.getJSONArray(EOS_IDS);
        for (int i = 0; i < e.length(); i++) {
            eos.add(e.getInt(i));
        }
        eosIds = Collections.unmodifiableList(eos);
        addBos = m.getBoolean(ADD_BOS);
        contextLength = m.getInt(CONTEXT_LENGTH);
        chatTemplate = m.isNull(CHAT_TEMPLATE) ? null : m.getString(CHAT_TEMPLATE);
        JSONObject f = m.getJSONObject(CHAT_FORMAT);
        chatFormat = new ChatFormat(f.getString(USER), f.getString(SYSTEM_USER));
        JSONObject g = o.getJSONObject(GENERATION);
        temperature = (float) g.getDouble(TEMPERATURE);
        maxNewTokens = g.getInt(MAX_NEW_TOKENS);
        systemPrompt = g.getString(SYSTEM_PROMPT);
        List<BundleFile> fl = new ArrayList<BundleFile>();
        JSONArray fa = o.getJSONArray(FILES);
        for (int i = 0; i < fa.length(); i++) {
            JSONObject x = fa.getJSONObject(i);
            fl.add(new BundleFile(x.getString(PATH), x.getLong(BYTES), x.getString(SHA256)));
        }
        files = Collections.unmodifiableList(fl);
        List<RuntimeEntry> rl = new ArrayList<RuntimeEntry>();
        JSONArray ra = o.getJSONArray(RUNTIMES);
        for (int i = 0; i < ra.length(); i++) {
            rl.add(new RuntimeEntry(ra.getJSONObject(i)));
        }
        runtimes = Collections.unmodifiableList(rl);
    }

    public static BundleManifest parse(String json) throws ManifestException {
        try {
            return new BundleManifest(new JSONObject(json));
        } catch (JSONException ex) {
            throw new ManifestException("manifest.json: " + ex.getMessage() + "; bundle it again with `edgellama bundle`");
        }
    }

    /** Reads bundleDir/manifest.json. */
    public static BundleManifest read(File bundleDir) throws ManifestException {
        File f = new File(bundleDir, FILE_NAME);
        try {
            return parse(new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8));
        } catch (IOException ex) {
            throw new ManifestException(f + ": cannot read (" + ex.getMessage() + "); push the bundle again");
        }
    }
}
