using System.Diagnostics;
using System.Globalization;
using System.Text;
using Identity.Bench;
using PropagationBench;

// Benchmark, not a test: propagation latency of user changes to two regions. See bench/README.md and
// bench/propagation-bench.sh.

if (BenchArgs.TryParse("PropagationBench", args, BenchOptions.Parse, BenchOptions.Usage) is not { } options)
{
    return 2;
}

// Each region runs in a process of its own (as a regional service does): this program again, with --as-region.
return options.AsRegion is { } region ? await RegionProcess.RunAsync(options, region)
    : options.Loop > 0 ? await WritePathLoop.RunAsync(options)
    : await Bench.RunAsync(options);

namespace PropagationBench
{
    internal static class Bench
    {
        public static async Task<int> RunAsync(BenchOptions options)
        {
            await using var authority = new Authority(options.ConnectionString, options.Writer);
            var users = await authority.SeedAsync(options.Regions, options.Users);
            Log($"seeded account {Authority.AccountName}: {users.Length} users, regions {string.Join(' ', options.Regions)}");

            var regions = new List<RemoteRegion>();
            try
            {
                foreach (var region in options.Regions)
                {
                    regions.Add(await RemoteRegion.StartAsync(region, options.Args));
                }

                // The replicas start from the authority's state (their first start resyncs through the sync API), and
                // the seed's own events are drained before anything is measured.
                if (!await WaitAsync(TimeSpan.FromSeconds(120), async () =>
                        (await Task.WhenAll(regions.Select(r => r.SyncedAsync()))).All(s => s)
                        && await authority.PendingAsync() == 0
                        && (await LostAsync(authority, regions)).All(l => l == 0)))
                {
                    Log("the regions did not converge on the seeded state within 120 s (resync or dispatcher failing?)");
                    return 1;
                }

                Log($"{regions.Count} regions resynced and in step with the authority");
                return await MeasureAsync(options, authority, regions, users);
            }
            finally
            {
                foreach (var region in regions)
                {
                    await region.DisposeAsync();
                }
            }
        }

        private static async Task<int> MeasureAsync(BenchOptions options, Authority authority, List<RemoteRegion> regions, string[] users)
        {
            var frequency = (double)Stopwatch.Frequency;
            var perCommit = options.ChangesPerCommit;
            var interval = (long)(frequency * perCommit / options.Rate); // between two commits, over all writers
            var start = Stopwatch.GetTimestamp() + (long)(0.2 * frequency);
            var warmupEnd = start + (long)(options.WarmupSeconds * frequency);
            var end = warmupEnd + (long)(options.Seconds * frequency);
            var wallStart = DateTimeOffset.UtcNow + TimeSpan.FromSeconds((start - Stopwatch.GetTimestamp()) / frequency);
            var wallWarmupEnd = wallStart + TimeSpan.FromSeconds(options.WarmupSeconds);
            var wallEnd = wallWarmupEnd + TimeSpan.FromSeconds(options.Seconds);
            var receivedBefore = await Task.WhenAll(regions.Select(r => r.CountAsync()));
            var batchesBefore = await Task.WhenAll(regions.Select(r => r.BatchesAsync()));
            Log($"open loop: {options.Rate} changes/s ({perCommit} per commit) round robin over {users.Length} users by {options.Writers} writers, " +
                $"{options.WarmupSeconds} s warm-up, {options.Seconds} s measured; server Outbox:PollInterval {options.PollInterval}");

            var writers = Enumerable.Range(0, options.Writers).Select(w => new Writer()).ToArray();
            var loops = writers.Select((writer, w) => Task.Run(() =>
                WriteAsync(authority, users, perCommit, writer, w, options.Writers, start, interval, warmupEnd, end))).ToArray();

            await Task.Delay(Remaining(warmupEnd));
            var cpu0 = CpuSample.Take(options, regions);
            await Task.Delay(Remaining(end));
            var cpu1 = CpuSample.Take(options, regions);
            await Task.WhenAll(loops);
            var writesDone = Stopwatch.GetTimestamp();

            // Drain: every user's final version and display name in every replica (nothing lost), or the time is up.
            var lost = await LostAsync(authority, regions);
            var drainClock = Stopwatch.StartNew();
            while (lost.Any(l => l > 0) && drainClock.Elapsed.TotalSeconds < options.DrainSeconds)
            {
                await Task.Delay(250);
                lost = await LostAsync(authority, regions);
            }

            var drainMs = (Stopwatch.GetTimestamp() - writesDone) * 1000 / frequency;
            var pendingAtEnd = await authority.PendingAsync();
            var recorders = await Task.WhenAll(regions.Select(r => r.RecorderAsync()));

            var changes = writers.Sum(w => w.Changes);
            var measured = writers.Sum(w => w.MeasuredChanges);
            var committedInWindow = writers.Sum(w => w.CommittedInWindow);
            var conflicts = writers.Sum(w => w.Conflicts);
            var errors = writers.Sum(w => w.Errors);
            var late = writers.Sum(w => w.LateStarts);
            var maxLateMs = writers.Max(w => w.MaxLateTicks) * 1000 / frequency;

            var line = new StringBuilder();
            void Add(string key, string value) => line.Append(line.Length > 0 ? " " : "").Append(key).Append('=').Append(value);
            void AddLatencies(string prefix, double[] ms)
            {
                Array.Sort(ms);
                Add(prefix + "events", ms.Length.ToString(CultureInfo.InvariantCulture));
                Add(prefix + "p50_ms", F(Percentile(ms, 0.50), 1));
                Add(prefix + "p90_ms", F(Percentile(ms, 0.90), 1));
                Add(prefix + "p99_ms", F(Percentile(ms, 0.99), 1));
                Add(prefix + "max_ms", F(Percentile(ms, 1.00), 1));
            }

            Add("rate", F(options.Rate, 0));
            // Commits completed inside the measured window, per second: below the rate when the writers fall behind.
            Add("achieved_rate", F(committedInWindow / options.Seconds, 1));
            Add("changes", measured.ToString(CultureInfo.InvariantCulture));
            var perRegion = recorders.Select(r => r.OfChangesIn(wallWarmupEnd, wallEnd)).ToArray();
            var all = perRegion.SelectMany(l => l).ToArray();
            AddLatencies("", all.Select(e => e.TotalMs).ToArray());
            for (var i = 0; i < regions.Count; i++)
            {
                AddLatencies(regions[i].Region + "_", perRegion[i].Select(e => e.TotalMs).ToArray());
            }

            // Where the time goes: commit -> published by the server (outbox), published -> applied (region).
            var outbox = Sorted(all.Where(e => !double.IsNaN(e.OutboxMs)).Select(e => e.OutboxMs));
            var region = Sorted(all.Where(e => !double.IsNaN(e.OutboxMs)).Select(e => e.TotalMs - e.OutboxMs));
            Add("outbox_p50_ms", F(Percentile(outbox, 0.50), 1));
            Add("outbox_p99_ms", F(Percentile(outbox, 0.99), 1));
            Add("region_p50_ms", F(Percentile(region, 0.50), 1));
            Add("region_p99_ms", F(Percentile(region, 0.99), 1));

            var totalLost = lost.Sum();
            Add("lost", $"{totalLost}/{users.Length * regions.Count}");
            for (var i = 0; i < regions.Count; i++)
            {
                Add(regions[i].Region + "_lost", $"{lost[i]}/{users.Length}");
                Add(regions[i].Region + "_received", (recorders[i].Count - receivedBefore[i]).ToString(CultureInfo.InvariantCulture));
                // UserChanged applied per second during the measured window (the region's consumption rate).
                Add(regions[i].Region + "_applied_per_s", F(recorders[i].AppliedIn(wallWarmupEnd, wallEnd) / options.Seconds, 1));
                // Transactions the region ran for UserChanged from the warm-up to the end of the drain: their count,
                // mean size and mean time.
                var (batches, events, seconds) = await regions[i].BatchesAsync();
                batches -= batchesBefore[i].Batches;
                events -= batchesBefore[i].Events;
                seconds -= batchesBefore[i].Seconds;
                Add(regions[i].Region + "_batches", batches.ToString(CultureInfo.InvariantCulture));
                Add(regions[i].Region + "_batch_mean_events", F(batches == 0 ? 0 : (double)events / batches, 1));
                Add(regions[i].Region + "_batch_mean_ms", F(batches == 0 ? 0 : seconds * 1000 / batches, 2));
            }

            // Not drained = some replica was still behind when the drain time was up: lost, or still queued (a backlog:
            // compare received with changes_total, and outbox_pending = rows the server had not yet published).
            Add("drained", totalLost == 0 ? "true" : "false");
            Add("changes_total", changes.ToString(CultureInfo.InvariantCulture));
            Add("drain_ms", F(drainMs, 0));
            Add("outbox_pending", pendingAtEnd.ToString(CultureInfo.InvariantCulture));
            Add("conflicts", conflicts.ToString(CultureInfo.InvariantCulture));
            Add("write_errors", errors.ToString(CultureInfo.InvariantCulture));
            Add("late_starts", late.ToString(CultureInfo.InvariantCulture));
            Add("max_late_ms", F(maxLateMs, 1));
            Add("write_p50_ms", F(Percentile(Sorted(writers.SelectMany(w => w.WriteMs)), 0.50), 2));
            Add("write_p99_ms", F(Percentile(Sorted(writers.SelectMany(w => w.WriteMs)), 0.99), 2));
            Add("poll_interval", options.PollInterval);
            Add("users", users.Length.ToString(CultureInfo.InvariantCulture));
            Add("writers", options.Writers.ToString(CultureInfo.InvariantCulture));
            Add("changes_per_commit", perCommit.ToString(CultureInfo.InvariantCulture));
            Add("writer", options.Writer == BenchWriter.Operation ? "operation" : "direct");
            Add("duration_s", F(options.Seconds, 0));
            Add("warmup_s", F(options.WarmupSeconds, 0));
            // CPU over the measured window, in % of one core (nproc cores = nproc x 100 %).
            var window = (cpu1.At - cpu0.At) / frequency;
            string Pct(double seconds) => (seconds * 100 / window).ToString("F0", CultureInfo.InvariantCulture);
            if (options.ServerPid is not null)
            {
                Add("server_cpu_pct", Pct(cpu1.Server - cpu0.Server));
            }

            if (options.DbPid is not null)
            {
                Add("postgres_cpu_pct", Pct(cpu1.Db - cpu0.Db));
            }

            if (options.BrokerPid is not null)
            {
                Add("rabbitmq_cpu_pct", Pct(cpu1.Broker - cpu0.Broker));
            }

            Add("bench_cpu_pct", Pct(cpu1.Bench - cpu0.Bench));
            for (var i = 0; i < regions.Count; i++)
            {
                Add(regions[i].Region + "_cpu_pct", Pct(cpu1.Regions[i] - cpu0.Regions[i]));
            }

            var regionsCpu = cpu1.Regions.Sum() - cpu0.Regions.Sum();
            Add("regions_cpu_pct", Pct(regionsCpu));
            Add("machine_busy_pct", Pct(cpu1.Machine - cpu0.Machine));
            // What other programs used meanwhile (the machine is shared): busy minus everything above.
            Add("other_cpu_pct", Pct(Math.Max(0, cpu1.Machine - cpu0.Machine - (cpu1.Server - cpu0.Server) - (cpu1.Db - cpu0.Db)
                - (cpu1.Broker - cpu0.Broker) - (cpu1.Bench - cpu0.Bench) - regionsCpu)));
            Add("nproc", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture));
            // CPU milliseconds per change committed in the window: the writers (this process: EF Core and the outbox
            // interceptor, as the server's own code paths write), PostgreSQL, and the server (its dispatcher publishing
            // the rows); "authority" is their sum, the write path's cost that decides the sustainable rate.
            string PerChange(double seconds) => committedInWindow == 0 ? "n/a"
                : (seconds * 1000 * options.Seconds / window / committedInWindow).ToString("F2", CultureInfo.InvariantCulture);
            var writersCpu = cpu1.Bench - cpu0.Bench;
            var dbCpu = cpu1.Db - cpu0.Db;
            var serverCpu = cpu1.Server - cpu0.Server;
            Add("writers_cpu_ms_per_change", PerChange(writersCpu));
            Add("postgres_cpu_ms_per_change", PerChange(dbCpu));
            Add("server_cpu_ms_per_change", PerChange(serverCpu));
            Add("authority_cpu_ms_per_change", PerChange(writersCpu + dbCpu + serverCpu));
            Console.WriteLine(line.ToString());

            var received = recorders.Select((r, i) => r.Count - receivedBefore[i]).ToArray();
            var ok = totalLost == 0 && errors == 0 && measured > 0 && received.All(n => n >= changes);
            if (!ok)
            {
                Log($"FAILED: lost {totalLost}, write errors {errors}, received {string.Join('/', received)} of {changes} changes per region");
            }

            return ok ? 0 : 1;
        }

        /// <summary>
        /// Writer <paramref name="index"/> of <paramref name="count"/>: commit k (k = index, index + count, ...) is
        /// scheduled at start + k x interval and changes users k x N .. k x N + N - 1 mod users, N =
        /// <paramref name="perCommit"/> (so each user has one writer). A writer that falls behind starts the next commit
        /// at once and counts a late start.
        /// </summary>
        private static async Task WriteAsync(Authority authority, string[] users, int perCommit, Writer writer, int index, int count,
            long start, long interval, long warmupEnd, long end)
        {
            var lateThreshold = Stopwatch.Frequency / 100; // 10 ms
            for (long k = index; ; k += count)
            {
                var scheduled = start + k * interval;
                if (scheduled >= end)
                {
                    return;
                }

                var wait = scheduled - Stopwatch.GetTimestamp();
                if (wait > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(wait / (double)Stopwatch.Frequency));
                }

                var began = Stopwatch.GetTimestamp();
                var measured = scheduled >= warmupEnd;
                if (measured && began - scheduled > lateThreshold)
                {
                    writer.LateStarts++;
                    writer.MaxLateTicks = Math.Max(writer.MaxLateTicks, began - scheduled);
                }

                try
                {
                    var changed = Enumerable.Range(0, perCommit).Select(j => users[(k * perCommit + j) % users.Length]).ToArray();
                    if (await authority.ChangeDisplayNamesAsync(changed, $"Bench change {k}", CancellationToken.None))
                    {
                        writer.Changes += perCommit;
                        var done = Stopwatch.GetTimestamp();
                        if (measured)
                        {
                            writer.MeasuredChanges += perCommit;
                            writer.WriteMs.Add((done - began) * 1000.0 / Stopwatch.Frequency);
                        }

                        if (done >= warmupEnd && done < end)
                        {
                            writer.CommittedInWindow += perCommit;
                        }
                    }
                    else
                    {
                        writer.Conflicts++;
                    }
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    writer.Errors++;
                    if (writer.Errors <= 3)
                    {
                        Log($"write failed: {ex.GetType().Name}: {ex.Message}");
                    }
                }
            }
        }

        /// <summary>Per region: the users whose replica copy is missing or differs from the authority (version, display name).</summary>
        private static async Task<int[]> LostAsync(Authority authority, List<RemoteRegion> regions)
        {
            var truth = await authority.UsersAsync();
            var lost = new int[regions.Count];
            for (var i = 0; i < regions.Count; i++)
            {
                var replica = await regions[i].UsersAsync();
                lost[i] = truth.Count(u => !replica.TryGetValue(u.Key, out var copy) || copy != u.Value);
            }

            return lost;
        }

        private static async Task<bool> WaitAsync(TimeSpan timeout, Func<Task<bool>> condition)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (await condition())
                {
                    return true;
                }

                await Task.Delay(250);
            }

            return false;
        }

        private static TimeSpan Remaining(long timestamp) =>
            TimeSpan.FromSeconds(Math.Max(0, (timestamp - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency));

        private static double[] Sorted(IEnumerable<double> values)
        {
            var array = values.ToArray();
            Array.Sort(array);
            return array;
        }

        /// <summary>Nearest-rank percentile of sorted values (0 when empty).</summary>
        private static double Percentile(double[] sorted, double p) =>
            sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

        private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);

        private static void Log(string message) => Console.Error.WriteLine($"# propagation-bench: {message}");

        private sealed class Writer
        {
            public int Changes { get; set; }

            public int MeasuredChanges { get; set; }

            public int CommittedInWindow { get; set; }

            public int Conflicts { get; set; }

            public int Errors { get; set; }

            public int LateStarts { get; set; }

            public long MaxLateTicks { get; set; }

            public List<double> WriteMs { get; } = new(1024);
        }

        /// <summary>CPU seconds so far: this process (the writers), the server, PostgreSQL, RabbitMQ, each region's process, the machine.</summary>
        private readonly record struct CpuSample(long At, double Bench, double Server, double Db, double Broker, double[] Regions, double Machine)
        {
            public static CpuSample Take(BenchOptions options, List<RemoteRegion> regions) => new(
                Stopwatch.GetTimestamp(),
                Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
                options.ServerPid is { } server ? ProcCpu.Process(server) : 0,
                options.DbPid is { } db ? ProcCpu.ProcessTree(db) : 0,
                options.BrokerPid is { } broker ? ProcCpu.ProcessTree(broker) : 0,
                [.. regions.Select(r => r.CpuSeconds)],
                ProcCpu.MachineBusy());
        }
    }
}
