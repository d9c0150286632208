using System.Globalization;

namespace AuthCodeBench;

/// <summary>
/// Bytes the server processes have allocated so far, read from each one's Prometheus endpoint on the management port
/// (the .NET runtime meter's <c>dotnet.gc.heap.total_allocated</c>, exported as
/// <c>dotnet_gc_heap_total_allocated_bytes_total</c>). Sampled at both ends of the measured window, the difference per
/// round trip is far less noisy than CPU time on a shared machine. Null when a server does not export it (an older
/// build measured with SERVER_DIR, or no --metrics-url).
/// </summary>
internal static class ServerAllocations
{
    private const string Series = "dotnet_gc_heap_total_allocated_bytes";

    private static readonly HttpClient Scraper = new() { Timeout = TimeSpan.FromSeconds(10) };

    public static async Task<double?> TakeAsync(IReadOnlyList<Uri> metricsUrls)
    {
        if (metricsUrls.Count == 0)
        {
            return null;
        }

        double sum = 0;
        foreach (var url in metricsUrls)
        {
            string text;
            try
            {
                text = await Scraper.GetStringAsync(url);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                Console.Error.WriteLine($"# authcode-bench: scraping {url} failed: {ex.Message}");
                return null;
            }

            if (Parse(text) is not { } bytes)
            {
                return null;
            }

            sum += bytes;
        }

        return sum;
    }

    /// <summary>The series' value in a Prometheus text exposition: <c>name{labels} value [timestamp]</c>.</summary>
    private static double? Parse(string exposition)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (!line.StartsWith(Series, StringComparison.Ordinal))
            {
                continue;
            }

            var afterLabels = line.LastIndexOf('}') is var close and >= 0 ? line[(close + 1)..] : line[line.IndexOf(' ')..];
            var value = afterLabels.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var bytes))
            {
                return bytes;
            }
        }

        return null;
    }
}
