using System.Diagnostics;
using System.Globalization;

namespace ValidationBench;

/// <summary>
/// The benchmarks' calls timed by the process's CPU time (user + system, all threads: the GC's too) rather than the
/// wall clock: on a machine other work keeps busy, wall-clock time per call grows with the load, CPU time barely does.
/// </summary>
internal static class CpuPerCall
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(3);

    public static void Run()
    {
        Console.WriteLine($"CPU µs per call, one thread, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, load average {LoadAverage()}:");
        foreach (var algorithm in new[] { "ES256", "RS256" })
        {
            var cost = new ValidationCost { Algorithm = algorithm };
            cost.Setup();
            var validation = new BoundTokenValidation { Algorithm = algorithm };
            validation.Setup();
            Report(algorithm, "RawVerify", () => cost.RawVerify());
            Report(algorithm, "Read", () => cost.Read());
            Report(algorithm, "FirstSight", () => validation.FirstSight());
            Report(algorithm, "Repeated", () => validation.Repeated());
        }
    }

    private static void Report<T>(string algorithm, string name, Func<T> call)
    {
        for (var i = 0; i < 2_000; i++)
        {
            call(); // warm-up: tiered JIT, caches
        }

        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpuBefore = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        long calls = 0;
        while (clock.Elapsed < Window)
        {
            for (var i = 0; i < 200; i++)
            {
                call();
            }

            calls += 200;
        }

        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpuBefore).TotalMicroseconds / calls;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {algorithm} {name,-10} {cpu,8:N1} µs CPU  ({1e6 / cpu,9:N0}/s per core)  wall {clock.Elapsed.TotalMicroseconds / calls,8:N1} µs"));
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
