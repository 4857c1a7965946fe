package org.edgellama.demo;

import android.app.Activity;
import android.content.Intent;
import android.os.Bundle;
import android.widget.ArrayAdapter;
import android.widget.ListView;
import android.widget.TextView;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.edgellama.demo.core.BundleFinder;
import org.edgellama.demo.core.HashVerifier;
import org.edgellama.demo.core.ManifestException;
import org.edgellama.demo.core.RuntimeEntry;

/** Lists every (bundle, runtime) pair found; a tap verifies the bundle's hashes, then opens the chat. */
public class MainActivity extends Activity {
    static final String EXTRA_BUNDLE_DIR = "bundle_dir";
    static final String EXTRA_RUNTIME_INDEX = "runtime_index";

    /** One row: a runtime of a readable bundle, or an unreadable bundle with its reason. */
    private static final class Row {
        final BundleFinder.Found bundle;
        final int runtimeIndex;

        Row(BundleFinder.Found bundle, int runtimeIndex) {
            this.bundle = bundle;
            this.runtimeIndex = runtimeIndex;
        }

        @Override
        public String toString() {
            if (bundle.manifest == null) {
                return bundle.dir.getName() + ": cannot be used — " + bundle.problem;
            }
            RuntimeEntry e = bundle.manifest.runtimes.get(runtimeIndex);
            String parity = e.parityVerdict == null ? "" : " · parity " + e.parityVerdict;
            return bundle.manifest.name + " — " + e.label() + parity + "\n" + bundle.dir;
        }
    }

    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private final List<Row> rows = new ArrayList<Row>();
    private TextView status;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        status = findViewById(R.id.status);
        ListView list = findViewById(R.id.bundles);
        final ArrayAdapter<Row> adapter = new ArrayAdapter<Row>(this, R.layout.item_bundle, rows);
        list.setAdapter(adapter);
        list.setOnItemClickListener((parent, view, position, id) -> open(rows.get(position)));
        worker.execute(() -> {
            final List<Row> found = new ArrayList<Row>();
            for (BundleFinder.Found f : BundleFinder.find(Bundles.roots(this))) {
                int n = f.manifest == null ? 1 : f.manifest.runtimes.size();
                for (int i = 0; i < n; i++) {
                    found.add(new Row(f, i));
                }
            }
            runOnUiThread(() -> {
                rows.clear();
                rows.addAll(found);
                adapter.notifyDataSetChanged();
                status.setText(found.isEmpty() ? R.string.no_bundles : R.string.pick);
            });
        });
    }

    private void open(final Row row) {
        if (row.bundle.manifest == null) {
            status.setText(row.bundle.problem);
            return;
        }
        final File dir = row.bundle.dir;
        status.setText("Verifying " + row.bundle.manifest.files.size() + " files of " + row.bundle.manifest.name + "…");
        worker.execute(() -> {
            try {
                HashVerifier.verify(dir, row.bundle.manifest, (file, done, total) ->
                        runOnUiThread(() -> status.setText("Verified " + done + "/" + total + ": " + file.path)));
            } catch (final ManifestException ex) {
                runOnUiThread(() -> status.setText(ex.getMessage()));
                return;
            }
            runOnUiThread(() -> startActivity(new Intent(this, ChatActivity.class)
                    .putExtra(EXTRA_BUNDLE_DIR, dir.getPath())
                    .putExtra(EXTRA_RUNTIME_INDEX, row.runtimeIndex)));
        });
    }

    @Override
    protected void onDestroy() {
        worker.shutdownNow();
        super.onDestroy();
    }
}
