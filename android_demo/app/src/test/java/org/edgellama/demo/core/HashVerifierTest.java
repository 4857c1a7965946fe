package org.edgellama.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.Assume;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * Hash verification on a bundle written here, and on the bundles tests/test_android.py made with
 * `edgellama bundle` (passed as -Dedgellama.testBundles=DIR: DIR/good/NAME verifies; each
 * DIR/flipped-N/NAME has one byte flipped in the file named by DIR/flipped-N/expected.txt).
 */
public class HashVerifierTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private File writeBundle() throws IOException {
        File dir = tmp.newFolder("tiny");
        new File(dir, "executorch").mkdir();
        Files.write(new File(dir, "executorch/model.pte").toPath(), "pte".getBytes(StandardCharsets.UTF_8));
        // A well-formed sha256 that is not the file's: the tests below expect it to be refused.
        String wrong = "2ea0d2e3f47c6bd1d17a0c7d03a1ec5a1830d6f7e1f0d2ea5dbb1d7b8e25e0d1";
        String json = BundleManifestTest.JSON.replace(BundleManifestTest.zeros() + "\"}]", wrong + "\"}]");
        Files.write(new File(dir, "manifest.json").toPath(), json.getBytes(StandardCharsets.UTF_8));
        return dir;
    }

    @Test
    public void sha256MatchesAKnownValue() throws Exception {
        File f = tmp.newFile("abc");
        Files.write(f.toPath(), "abc".getBytes(StandardCharsets.UTF_8));
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", HashVerifier.sha256(f));
    }

    @Test
    public void aChangedFileIsRefused() throws Exception {
        File dir = writeBundle();
        BundleManifest m = BundleManifest.read(dir);
        String actual = HashVerifier.sha256(new File(dir, "executorch/model.pte"));
        assertFalse(actual.equals(m.files.get(0).sha256));
        try {
            HashVerifier.verify(dir, m, null);
            fail();
        } catch (ManifestException ex) {
            assertTrue(ex.getMessage(), ex.getMessage().contains("model.pte: sha256 differs"));
        }
    }

    @Test
    public void aMissingOrResizedFileIsRefused() throws Exception {
        File dir = writeBundle();
        BundleManifest m = BundleManifest.read(dir);
        Files.write(new File(dir, "executorch/model.pte").toPath(), "ptee".getBytes(StandardCharsets.UTF_8));
        try {
            HashVerifier.verify(dir, m, null);
            fail();
        } catch (ManifestException ex) {
            assertTrue(ex.getMessage(), ex.getMessage().contains("4 bytes, manifest.json says 3"));
        }
        assertTrue(new File(dir, "executorch/model.pte").delete());
        try {
            HashVerifier.verify(dir, m, null);
            fail();
        } catch (ManifestException ex) {
            assertTrue(ex.getMessage(), ex.getMessage().contains("missing"));
        }
    }

    private static File pythonBundles() {
        String dir = System.getProperty("edgellama.testBundles", "");
        Assume.assumeTrue("no -Dedgellama.testBundles: bundles from `edgellama bundle` not given", !dir.isEmpty());
        return new File(dir);
    }

    @Test
    public void bundlesFromEdgellamaVerify() throws Exception {
        File root = new File(pythonBundles(), "good");
        List<BundleFinder.Found> found = BundleFinder.find(Arrays.asList(root));
        assertFalse(found.isEmpty());
        for (BundleFinder.Found f : found) {
            assertEquals(f.problem, null, f.problem);
            final List<String> seen = new ArrayList<String>();
            HashVerifier.verify(f.dir, f.manifest, (file, done, total) -> seen.add(file.path));
            assertEquals(f.manifest.files.size(), seen.size());
            assertTrue(f.manifest.runtimes.size() >= 1);
            for (RuntimeEntry e : f.manifest.runtimes) {
                assertTrue(e.model(f.dir).isFile());
                assertTrue(e.tokenizer(f.dir).isFile());
            }
        }
        // tests/test_android.py looks for this line: the bundles it made were really checked.
        System.out.println("verified " + found.size() + " bundle(s) from edgellama in " + root);
    }

    @Test
    public void flippedBytesInBundlesFromEdgellamaAreRefused() throws Exception {
        File[] cases = pythonBundles().listFiles((d, n) -> n.startsWith("flipped-"));
        assertTrue(cases != null && cases.length > 0);
        for (File c : cases) {
            String expected = new String(Files.readAllBytes(new File(c, "expected.txt").toPath()), StandardCharsets.UTF_8).trim();
            List<BundleFinder.Found> found = BundleFinder.find(Arrays.asList(c));
            assertEquals(1, found.size());
            try {
                HashVerifier.verify(found.get(0).dir, found.get(0).manifest, null);
                fail(c + ": verified although " + expected + " has a flipped byte");
            } catch (ManifestException ex) {
                assertTrue(ex.getMessage(), ex.getMessage().contains(expected + ": sha256 differs"));
            }
        }
        System.out.println("refused " + cases.length + " bundle(s) from edgellama with a flipped byte");
    }
}
