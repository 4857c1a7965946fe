package org.edgellama.demo.core;

import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.json.JSONObject;
import org.junit.Test;

public class BenchmarkReportTest {
    @Test
    public void mediansOverRuns() throws Exception {
        List<GenerationStats> runs = Arrays.asList(
                new GenerationStats(128, 128, 0, 90, 600, 40),
                new GenerationStats(128, 128, 0, 70, 700, 44),
                new GenerationStats(128, 128, 0, 80, 650, 41));
        RuntimeEntry entry = BundleManifestTest.manifest().runtimes.get(0);
        JSONObject r = BenchmarkReport.build("tiny", entry, 128, 128,
                Collections.singletonMap("model", "Pixel 8"), runs, 523456);
        assertEquals(3, r.getJSONArray("runs").length());
        assertEquals(80, r.getJSONObject("median").getDouble("ttft_ms"), 1e-9);
        assertEquals(650, r.getJSONObject("median").getDouble("prefill_tok_s"), 1e-9);
        assertEquals(41, r.getJSONObject("median").getDouble("decode_tok_s"), 1e-9);
        assertEquals("executorch", r.getString("runtime"));
        assertEquals("Pixel 8", r.getJSONObject("device").getString("model"));
        assertEquals(523456, r.getLong("peak_memory_kb"));
    }

    @Test
    public void peakMemoryFromProcStatus() {
        assertEquals(523456, PeakMemory.parse("Name:\tjava\nVmPeak:\t 9999 kB\nVmHWM:\t  523456 kB\nVmRSS:\t 1 kB\n"));
        assertEquals(-1, PeakMemory.parse("Name:\tjava\n"));
    }

    @Test
    public void syntheticPromptHasOneWordPerToken() {
        assertEquals(127, BenchmarkReport.syntheticPrompt(128).split(" ").length);
    }
}
