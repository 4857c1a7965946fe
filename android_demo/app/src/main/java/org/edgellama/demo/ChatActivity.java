package org.edgellama.demo;

import android.app.Activity;
import android.os.Bundle;
import android.view.View;
import android.widget.Button;
import android.widget.EditText;
import android.widget.ScrollView;
import android.widget.TextView;
import java.io.File;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.edgellama.demo.core.BundleManifest;
import org.edgellama.demo.core.GenerationStats;
import org.edgellama.demo.core.LiveRate;
import org.edgellama.demo.core.ManifestException;
import org.edgellama.demo.core.RuntimeEntry;
import org.edgellama.demo.engine.EngineException;
import org.edgellama.demo.engine.Engines;
import org.edgellama.demo.engine.LlmEngine;

/**
 * Chat with one runtime of a verified bundle: each message is formatted with the manifest's chat
 * format and generated fresh (one-turn), tokens stream into the transcript, and the stats line shows
 * time to first token and decode tok/s while it runs, then the runtime's prefill and decode rates.
 */
public class ChatActivity extends Activity {
    private final ExecutorService worker = Executors.newSingleThreadExecutor(); // all engine calls, in order
    private BundleManifest manifest;
    private volatile LlmEngine engine; // set on the worker, stopped from the UI thread
    private TextView status;
    private TextView stats;
    private TextView transcript;
    private ScrollView scroll;
    private EditText input;
    private Button send;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_chat);
        status = findViewById(R.id.chat_status);
        stats = findViewById(R.id.chat_stats);
        transcript = findViewById(R.id.transcript);
        scroll = findViewById(R.id.chat_scroll);
        input = findViewById(R.id.input);
        send = findViewById(R.id.send);
        Button stop = findViewById(R.id.stop);
        final File dir = new File(getIntent().getStringExtra(MainActivity.EXTRA_BUNDLE_DIR));
        final int index = getIntent().getIntExtra(MainActivity.EXTRA_RUNTIME_INDEX, 0);
        send.setOnClickListener(v -> send());
        stop.setOnClickListener(v -> {
            if (engine != null) {
                engine.stop();
            }
        });
        worker.execute(() -> load(dir, index));
    }

    private void load(File dir, int index) {
        try {
            manifest = BundleManifest.read(dir);
            RuntimeEntry entry = manifest.runtimes.get(index);
            runOnUiThread(() -> setTitle(manifest.name + " · " + entry.label()));
            engine = Engines.create(dir, manifest, entry);
            final double ms = engine.load();
            runOnUiThread(() -> {
                status.setText(String.format(Locale.ROOT, "Loaded in %.0f ms. Context %d tokens.", ms, manifest.contextLength));
                send.setEnabled(true);
            });
        } catch (final ManifestException | EngineException ex) {
            runOnUiThread(() -> status.setText(ex.getMessage()));
        }
    }

    private void send() {
        final String message = input.getText().toString().trim();
        if (message.isEmpty()) {
            return;
        }
        input.getText().clear();
        send.setEnabled(false);
        transcript.append("\n\nYou: " + message + "\n\nModel: ");
        final String prompt = manifest.chatFormat.render(manifest.systemPrompt, message);
        worker.execute(() -> {
            final LiveRate rate = new LiveRate(System.nanoTime());
            try {
                final GenerationStats s = engine.generate(prompt, manifest.maxNewTokens, text -> {
                    rate.onToken(System.nanoTime());
                    runOnUiThread(() -> {
                        transcript.append(text);
                        stats.setText(rate.summary());
                        scroll.post(() -> scroll.fullScroll(View.FOCUS_DOWN));
                    });
                });
                runOnUiThread(() -> stats.setText(s.summary()));
            } catch (final EngineException ex) {
                runOnUiThread(() -> status.setText(ex.getMessage()));
            }
            runOnUiThread(() -> send.setEnabled(true));
        });
    }

    @Override
    protected void onDestroy() {
        if (engine != null) {
            engine.stop();
        }
        worker.execute(() -> {
            if (engine != null) {
                engine.close();
            }
        });
        worker.shutdown();
        super.onDestroy();
    }
}
