using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Identity.Bench;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace PropagationBench;

/// <summary>
/// The write path alone (issue 18 item 5, bench/write-path-profile.sh): user changes through the admin PATCH's operation
/// (<see cref="Authority.ChangeDisplayNamesAsync"/>), one after another per writer, as fast as they go, with no broker,
/// region or dispatcher running. What it prints per change — the bytes this process allocated, the commands it sent,
/// the CPU of this process and of PostgreSQL — depends on the code, not on how busy the machine is (the bytes and the
/// commands not at all), so two builds can be compared on a loaded machine.
/// </summary>
internal static class WritePathLoop
{
    public static async Task<int> RunAsync(BenchOptions options)
    {
        var commands = new CommandCounter();
        await using var authority = new Authority(options.ConnectionString, options.Writer, commands);
        var users = await authority.SeedAsync(options.Regions, options.Users);
        var writers = Enumerable.Range(1, Math.Min(options.Writers, users.Length)).Last(w => users.Length % w == 0);
        Log($"{users.Length} users in regions {string.Join(' ', options.Regions)}; {writers} writers; warm-up {options.WarmupChanges} changes, then {options.Loop}");

        await RunChangesAsync(authority, users, writers, options.WarmupChanges, round: 0);
        GC.Collect();
        GC.WaitForPendingFinalizers();

        if (options.WindowFile is { } windowFile)
        {
            await File.WriteAllTextAsync(windowFile, "start");
        }

        var commands0 = commands.Commands;
        var commits0 = commands.Commits;
        var allocated0 = GC.GetTotalAllocatedBytes(precise: true);
        var gen0 = GC.CollectionCount(0);
        var gen2 = GC.CollectionCount(2);
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        var db0 = options.DbPid is { } dbPid ? ProcCpu.ProcessTree(dbPid) : 0;
        var started = Stopwatch.GetTimestamp();

        var conflicts = await RunChangesAsync(authority, users, writers, options.Loop, round: 1);

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - cpu0;
        var db = options.DbPid is { } pid ? ProcCpu.ProcessTree(pid) - db0 : double.NaN;
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated0;
        double n = options.Loop;
        var line = new StringBuilder();
        void Add(string key, string value) => line.Append(line.Length == 0 ? "" : " ").Append(key).Append('=').Append(value);
        Add("changes", options.Loop.ToString(CultureInfo.InvariantCulture));
        Add("writers", writers.ToString(CultureInfo.InvariantCulture));
        Add("conflicts", conflicts.ToString(CultureInfo.InvariantCulture));
        Add("changes_per_s", F(n / seconds, 0));
        Add("allocated_bytes_per_change", F(allocated / n, 0));
        Add("commands_per_change", F((commands.Commands - commands0) / n, 2));
        Add("commits_per_change", F((commands.Commits - commits0) / n, 2));
        Add("writer_cpu_ms_per_change", F(cpu * 1000 / n, 3));
        Add("postgres_cpu_ms_per_change", double.IsNaN(db) ? "" : F(db * 1000 / n, 3));
        Add("gen0_collections", (GC.CollectionCount(0) - gen0).ToString(CultureInfo.InvariantCulture));
        Add("gen2_collections", (GC.CollectionCount(2) - gen2).ToString(CultureInfo.InvariantCulture));
        Console.WriteLine(line.ToString());
        return conflicts == 0 ? 0 : 1;
    }

    /// <summary>
    /// <paramref name="count"/> changes by <paramref name="writers"/> writers, each one at a time: writer w renames users
    /// w, w + writers, ... in turn, so no two writers change one user (the users are a multiple of the writers).
    /// </summary>
    /// <returns>The changes refused as stale (none expected).</returns>
    private static async Task<int> RunChangesAsync(Authority authority, string[] users, int writers, int count, long round)
    {
        var conflicts = 0;
        var remaining = count;
        var mine = users.Length / writers;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var j = 0L; Interlocked.Decrement(ref remaining) >= 0; j++)
            {
                var user = users[w + (int)(j % mine) * writers];
                if (!await authority.ChangeDisplayNamesAsync([user], $"Loop {round}.{w}.{j}", CancellationToken.None))
                {
                    Interlocked.Increment(ref conflicts);
                }
            }
        })));
        return conflicts;
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);

    private static void Log(string message) => Console.Error.WriteLine($"# write-path-loop: {message}");

    /// <summary>Commands sent to the database (each a round trip; a PostgreSQL batch is one) and transactions committed.</summary>
    private sealed class CommandCounter : DbCommandInterceptor, IDbTransactionInterceptor
    {
        private long _commands;
        private long _commits;

        public long Commands => Interlocked.Read(ref _commands);

        public long Commits => Interlocked.Read(ref _commits);

        public override DbCommand CommandInitialized(CommandEndEventData eventData, DbCommand result)
        {
            Interlocked.Increment(ref _commands);
            return result;
        }

        public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _commits);
            return Task.CompletedTask;
        }

        public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Interlocked.Increment(ref _commits);
    }
}
