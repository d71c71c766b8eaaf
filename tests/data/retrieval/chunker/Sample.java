package demo;

import java.util.List;

/** Utilities for lists. */
public class ListUtils {
    private ListUtils() {}

    /** Sums the list. */
    @Deprecated
    public static int sum(List<Integer> xs) {
        int total = 0;
        for (int x : xs) total += x;
        return total;
    }
}

interface Greeter {
    String greet(String name);
}

enum Planet { MERCURY, VENUS }
