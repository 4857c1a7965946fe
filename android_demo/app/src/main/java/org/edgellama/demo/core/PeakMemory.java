package org.edgellama.demo.core;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;

/** The process's peak resident memory (VmHWM in /proc/self/status), in KiB; -1 if unknown. */
public final class PeakMemory {
    private PeakMemory() {}

    public static long parse(String procStatus) {
        for (String line : procStatus.split("\n")) {
            if (line.startsWith("VmHWM:")) {
                String[] parts = line.substring(6).trim().split("\\s+");
                try {
                    return Long.parseLong(parts[0]);
                } catch (NumberFormatException ex) {
                    return -1;
                }
            }
        }
        return -1;
    }

    public static long currentProcessKb() {
        try {
            return parse(new String(Files.readAllBytes(new File("/proc/self/status").toPath()), StandardCharsets.UTF_8));
        } catch (IOException ex) {
            return -1;
        }
    }
}
