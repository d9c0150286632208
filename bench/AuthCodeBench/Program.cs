using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Serialization;
using AuthCodeBench;
using Identity.Bench;

// Benchmark, not a test: authorization-code round trips for users who already have an SSO session.
// See bench/README.md and bench/authcode-bench.sh.

if (BenchArgs.TryParse("AuthCodeBench", args, BenchOptions.Parse, BenchOptions.Usage) is not { } options)
{
    return 2;
}

if (options.SeedConnectionString is { } connectionString)
{
    var outcome = await UserSeeder.EnsureUserAsync(connectionString, options.SeedEmail!, options.SeedPassword!);
    Log($"seed user {options.SeedEmail}: {outcome}");
}

if (!options.RunsBench)
{
    return 0;
}

return await Bench.RunAsync(options);

static void Log(string message) => Console.Error.WriteLine($"# authcode-bench: {message}");

namespace AuthCodeBench
{
    internal static class Bench
    {
        public static async Task<int> RunAsync(BenchOptions options)
        {
            using var backend = BrowserSession.CreateBackend();
            var endpoints = await DiscoverAsync(backend, options.BaseUrl!);
            Log($"issuer {endpoints.Issuer}, authorize {endpoints.Authorization}, token {endpoints.Token}");

            // Every session signs in once through the login page (a few at a time: each sign-in hashes a password).
            var replicas = options.BaseUrls;
            var sessions = Enumerable.Range(0, options.Sessions).Select(i => new BrowserSession(options, endpoints with
            {
                Authorization = At(endpoints.Authorization, replicas[i % replicas.Count]),
                Token = At(endpoints.Token, replicas[(i + 1) % replicas.Count]),
            }, backend)).ToArray();
            if (replicas.Count > 1)
            {
                Log($"{replicas.Count} replicas: session i authorizes at replica i mod {replicas.Count} and redeems at the next");
            }

            try
            {
                var signInClock = Stopwatch.StartNew();
                await Parallel.ForEachAsync(sessions, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (s, _) => await s.SignInAsync());
                Log($"{sessions.Length} sessions signed in through /Account/Login in {signInClock.Elapsed.TotalSeconds:F1} s");

                return await MeasureAsync(options, sessions);
            }
            finally
            {
                foreach (var s in sessions)
                {
                    s.Dispose();
                }
            }
        }

        private static async Task<int> MeasureAsync(BenchOptions options, BrowserSession[] sessions)
        {
            var frequency = (double)Stopwatch.Frequency;
            var start = Stopwatch.GetTimestamp();
            var warmupEnd = start + (long)(options.WarmupSeconds * frequency);
            var end = warmupEnd + (long)(options.Seconds * frequency);
            Log(options.Rate is { } rate
                ? $"open loop: {rate} round trips/s over {sessions.Length} sessions, {options.WarmupSeconds} s warm-up, {options.Seconds} s measured"
                : $"closed loop: {sessions.Length} sessions, {options.WarmupSeconds} s warm-up, {options.Seconds} s measured");

            var recorders = sessions.Select(_ => new Recorder()).ToArray();
            var loops = sessions.Select((s, i) => Task.Run(() => options.Rate is { } r
                ? OpenLoopAsync(s, recorders[i], start, (long)(frequency * sessions.Length / r), i, sessions.Length, warmupEnd, end)
                : LoopAsync(s, recorders[i], warmupEnd, end))).ToArray();

            // The load generator's own CPU over the measured window (it shares the cores with the server).
            await Task.Delay(Remaining(warmupEnd));
            var cpu0 = CpuSample.Take(options);
            var allocated0 = await ServerAllocations.TakeAsync(options.MetricsUrls);
            if (options.WindowFile is { } windowFile)
            {
                await File.WriteAllTextAsync(windowFile, "start\n");
            }

            await Task.Delay(Remaining(end));
            var cpu1 = CpuSample.Take(options);
            var allocated1 = await ServerAllocations.TakeAsync(options.MetricsUrls);
            await Task.WhenAll(loops);

            var total = recorders.SelectMany(r => r.Total).ToArray();
            var authorize = recorders.SelectMany(r => r.Authorize).ToArray();
            var token = recorders.SelectMany(r => r.Token).ToArray();
            var errors = recorders.SelectMany(r => r.Errors).GroupBy(e => e.Key, e => e.Value)
                .ToDictionary(g => g.Key, g => g.Sum(), StringComparer.Ordinal);
            var errorCount = errors.Values.Sum();
            var warmupErrors = recorders.Sum(r => r.WarmupErrors);
            var warmupRoundTrips = recorders.Sum(r => r.WarmupRoundTrips);

            Array.Sort(total);
            Array.Sort(authorize);
            Array.Sort(token);
            var line = new StringBuilder();
            void Add(string key, string value) => line.Append(line.Length > 0 ? " " : "").Append(key).Append('=').Append(value);
            void AddMs(string key, long[] sorted, double p) => Add(key, Ms(Percentile(sorted, p)));

            Add("roundtrips_per_s", (total.Length / options.Seconds).ToString("F1", CultureInfo.InvariantCulture));
            AddMs("p50_ms", total, 0.50);
            AddMs("p90_ms", total, 0.90);
            AddMs("p99_ms", total, 0.99);
            AddMs("max_ms", total, 1.00);
            Add("errors", errorCount.ToString(CultureInfo.InvariantCulture));
            Add("sessions", sessions.Length.ToString(CultureInfo.InvariantCulture));
            Add("mode", options.Rate is { } offered ? "open_loop_rate_" + offered.ToString(CultureInfo.InvariantCulture) : "closed_loop");
            Add("duration_s", options.Seconds.ToString(CultureInfo.InvariantCulture));
            Add("roundtrips", total.Length.ToString(CultureInfo.InvariantCulture));
            AddMs("authorize_p50_ms", authorize, 0.50);
            AddMs("authorize_p90_ms", authorize, 0.90);
            AddMs("authorize_p99_ms", authorize, 0.99);
            AddMs("authorize_max_ms", authorize, 1.00);
            AddMs("token_p50_ms", token, 0.50);
            AddMs("token_p90_ms", token, 0.90);
            AddMs("token_p99_ms", token, 0.99);
            AddMs("token_max_ms", token, 1.00);
            Add("warmup_s", options.WarmupSeconds.ToString(CultureInfo.InvariantCulture));
            Add("warmup_roundtrips", warmupRoundTrips.ToString(CultureInfo.InvariantCulture));
            Add("warmup_errors", warmupErrors.ToString(CultureInfo.InvariantCulture));
            // CPU over the measured window, in % of one core (nproc cores = nproc x 100 %).
            var window = (cpu1.At - cpu0.At) / frequency;
            string Pct(double seconds) => (seconds * 100 / window).ToString("F0", CultureInfo.InvariantCulture);
            // CPU milliseconds per round trip completed in the window (the figure a cut is judged by).
            string MsPerRoundTrip(double seconds) => total.Length == 0 ? "n/a"
                : (seconds * 1000 * options.Seconds / window / total.Length).ToString("F2", CultureInfo.InvariantCulture);
            Add("client_cpu_pct", Pct(cpu1.Client - cpu0.Client));
            if (options.ServerPids.Count > 0)
            {
                Add("server_cpu_pct", Pct(cpu1.Server - cpu0.Server));
                Add("server_cpu_ms_per_roundtrip", MsPerRoundTrip(cpu1.Server - cpu0.Server));
            }

            if (options.MetricsUrls.Count > 0)
            {
                // Bytes the server(s) allocated per round trip completed in the window (the two scrapes' own: noise).
                Add("server_alloc_kb_per_roundtrip", allocated0 is { } a0 && allocated1 is { } a1 && total.Length > 0
                    ? ((a1 - a0) / 1024 * options.Seconds / window / total.Length).ToString("F1", CultureInfo.InvariantCulture)
                    : "n/a");
            }

            if (options.DbPid is not null)
            {
                Add("db_cpu_pct", Pct(cpu1.Db - cpu0.Db));
                Add("db_cpu_ms_per_roundtrip", MsPerRoundTrip(cpu1.Db - cpu0.Db));
            }

            Add("machine_busy_pct", Pct(cpu1.Machine - cpu0.Machine));
            Add("nproc", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture));
            Add("error_kinds", errors.Count == 0 ? "none"
                : string.Join(',', errors.OrderByDescending(e => e.Value).Select(e => $"{e.Key}:{e.Value}")));
            Console.WriteLine(line.ToString());

            return errorCount == 0 && warmupErrors == 0 && total.Length > 0 ? 0 : 1;
        }

        /// <summary>
        /// One session's closed loop: the next round trip starts when the previous one ends. A round trip counts
        /// (latency or error) when it completes inside the measured window.
        /// </summary>
        private static async Task LoopAsync(BrowserSession session, Recorder recorder, long warmupEnd, long end)
        {
            while (Stopwatch.GetTimestamp() < end)
            {
                var result = await TryRoundTripAsync(session);

                var done = Stopwatch.GetTimestamp();
                if (done < warmupEnd)
                {
                    recorder.WarmupRoundTrips++;
                    recorder.WarmupErrors += result.Error is null ? 0 : 1;
                }
                else if (done < end)
                {
                    recorder.Record(result);
                }

                if (result.Error is not null && result.AuthorizeTicks == 0)
                {
                    await Task.Delay(10); // the server is unreachable: do not spin
                }
            }
        }

        /// <summary>
        /// One session's open loop: round trip k is scheduled at start + (k + i/n) x interval (the sessions' phases
        /// are spread evenly). If the previous round trip overran, the next starts at once, and its latency still
        /// counts from its scheduled time — what a user arriving on schedule would have waited.
        /// </summary>
        private static async Task OpenLoopAsync(
            BrowserSession session, Recorder recorder, long start, long interval, int index, int count, long warmupEnd, long end)
        {
            var scheduled = start + interval * index / count;
            while (scheduled < end)
            {
                var wait = scheduled - Stopwatch.GetTimestamp();
                if (wait > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(wait / (double)Stopwatch.Frequency));
                }

                var queued = Math.Max(0, Stopwatch.GetTimestamp() - scheduled);
                var result = await TryRoundTripAsync(session);

                // The wait behind an overrunning predecessor belongs to the authorize leg (the first request).
                result = result with { AuthorizeTicks = result.AuthorizeTicks + queued };
                var done = Stopwatch.GetTimestamp();
                if (scheduled < warmupEnd)
                {
                    recorder.WarmupRoundTrips++;
                    recorder.WarmupErrors += result.Error is null ? 0 : 1;
                }
                else if (done < end)
                {
                    recorder.Record(result);
                }

                scheduled += interval;
            }
        }

        /// <summary>One round trip; a transport or parse failure becomes an error named after the exception.</summary>
        private static async Task<RoundTrip> TryRoundTripAsync(BrowserSession session)
        {
            try
            {
                return await session.RoundTripAsync();
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException or FormatException)
            {
                return new RoundTrip("exception_" + ex.GetType().Name, 0, 0);
            }
        }

        private static async Task<Endpoints> DiscoverAsync(HttpClient http, Uri baseUrl)
        {
            var discovery = await http.GetFromJsonAsync<Discovery>(new Uri(baseUrl, ".well-known/openid-configuration"))
                ?? throw new InvalidOperationException("empty discovery document");
            return new Endpoints(
                discovery.Issuer ?? throw new InvalidOperationException("discovery has no issuer"),
                discovery.AuthorizationEndpoint ?? throw new InvalidOperationException("discovery has no authorization_endpoint"),
                discovery.TokenEndpoint ?? throw new InvalidOperationException("discovery has no token_endpoint"));
        }

        /// <summary><paramref name="endpoint"/> with the scheme, host and port of <paramref name="replica"/>.</summary>
        private static Uri At(Uri endpoint, Uri replica) =>
            new UriBuilder(endpoint) { Scheme = replica.Scheme, Host = replica.Host, Port = replica.Port }.Uri;

        private static TimeSpan Remaining(long timestamp) =>
            TimeSpan.FromSeconds(Math.Max(0, (timestamp - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency));

        /// <summary>Nearest-rank percentile of sorted timestamps differences (0 when empty).</summary>
        private static long Percentile(long[] sorted, double p) =>
            sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

        private static string Ms(long ticks) =>
            (ticks * 1000.0 / Stopwatch.Frequency).ToString("F2", CultureInfo.InvariantCulture);

        private static void Log(string message) => Console.Error.WriteLine($"# authcode-bench: {message}");

        private sealed class Recorder
        {
            public List<long> Total { get; } = new(4096);

            public List<long> Authorize { get; } = new(4096);

            public List<long> Token { get; } = new(4096);

            public Dictionary<string, int> Errors { get; } = new(StringComparer.Ordinal);

            public int WarmupRoundTrips { get; set; }

            public int WarmupErrors { get; set; }

            public void Record(RoundTrip result)
            {
                if (result.Error is { } error)
                {
                    Errors[error] = Errors.GetValueOrDefault(error) + 1;
                    return;
                }

                Total.Add(result.AuthorizeTicks + result.TokenTicks);
                Authorize.Add(result.AuthorizeTicks);
                Token.Add(result.TokenTicks);
            }
        }

        private readonly record struct CpuSample(long At, double Client, double Server, double Db, double Machine)
        {
            public static CpuSample Take(BenchOptions options) => new(
                Stopwatch.GetTimestamp(),
                Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
                options.ServerPids.Sum(ProcCpu.Process),
                options.DbPid is { } db ? ProcCpu.ProcessTree(db) : 0,
                ProcCpu.MachineBusy());
        }

        private sealed class Discovery
        {
            [JsonPropertyName("issuer")]
            public string? Issuer { get; set; }

            [JsonPropertyName("authorization_endpoint")]
            public Uri? AuthorizationEndpoint { get; set; }

            [JsonPropertyName("token_endpoint")]
            public Uri? TokenEndpoint { get; set; }
        }
    }
}
