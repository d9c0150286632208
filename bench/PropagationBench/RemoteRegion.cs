using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Identity.Bench;

namespace PropagationBench;

/// <summary>
/// A region in a process of its own, as a regional service runs (its own deployment): this program started again with
/// <c>--as-region R</c> (<see cref="RegionProcess"/>), asked over its stdin/stdout, one JSON line per question. Its CPU
/// is then the region's alone, and its thread pool is not shared with the writers.
/// </summary>
public sealed class RemoteRegion : IAsyncDisposable
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly Process _process;
    private readonly SemaphoreSlim _lock = new(1, 1);

    private RemoteRegion(string region, Process process)
    {
        Region = region;
        _process = process;
    }

    public string Region { get; }

    /// <summary>CPU seconds the region's process has used so far.</summary>
    public double CpuSeconds => ProcCpu.Process(_process.Id);

    public static async Task<RemoteRegion> StartAsync(string region, IReadOnlyList<string> benchArgs)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }

        foreach (var arg in benchArgs)
        {
            start.ArgumentList.Add(arg);
        }

        start.ArgumentList.Add("--as-region");
        start.ArgumentList.Add(region);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the region " + region);
        var remote = new RemoteRegion(region, process);
        var ready = await process.StandardOutput.ReadLineAsync();
        if (ready != "ready")
        {
            throw new InvalidOperationException($"region {region} did not start (said '{ready}'); see its log above");
        }

        return remote;
    }

    public Task<bool> SyncedAsync() => AskAsync<bool>("synced");

    public async Task<Dictionary<string, (long Version, string? DisplayName)>> UsersAsync() =>
        (await AskAsync<Dictionary<string, UserState>>("users")).ToDictionary(u => u.Key, u => (u.Value.Version, u.Value.DisplayName));

    /// <summary>How many UserChanged the region has consumed so far.</summary>
    public Task<int> CountAsync() => AskAsync<int>("count");

    public async Task<(long Batches, long Events, double Seconds)> BatchesAsync()
    {
        var b = await AskAsync<BatchTotals>("batches");
        return (b.Batches, b.Events, b.Seconds);
    }

    /// <summary>A copy of everything the region recorded so far.</summary>
    public async Task<LatencyRecorder> RecorderAsync()
    {
        var recorder = new LatencyRecorder();
        foreach (var applied in await AskAsync<Applied[]>("events"))
        {
            recorder.Add(applied);
        }

        return recorder;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _process.StandardInput.WriteLineAsync("quit");
            await _process.StandardInput.FlushAsync();
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(patience.Token);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
        _lock.Dispose();
    }

    private async Task<T> AskAsync<T>(string question)
    {
        await _lock.WaitAsync();
        try
        {
            await _process.StandardInput.WriteLineAsync(question);
            await _process.StandardInput.FlushAsync();
            var answer = await _process.StandardOutput.ReadLineAsync()
                         ?? throw new InvalidOperationException($"region {Region} exited (asked '{question}')");
            return JsonSerializer.Deserialize<T>(answer, Json)!;
        }
        finally
        {
            _lock.Release();
        }
    }
}

public sealed record UserState(long Version, string? DisplayName);

public sealed record BatchTotals(long Batches, long Events, double Seconds);

/// <summary>The child side of <see cref="RemoteRegion"/>: hosts one region and answers its questions.</summary>
internal static class RegionProcess
{
    public static async Task<int> RunAsync(BenchOptions options, string region)
    {
        // stdout is the conversation with the parent: the host logs to stderr (RegionHost), nothing else writes here.
        var output = Console.Out;
        await using var host = await RegionHost.StartAsync(region, options);
        await output.WriteLineAsync("ready");
        await output.FlushAsync();

        while (await Console.In.ReadLineAsync() is { } question && question != "quit")
        {
            object answer = question switch
            {
                "synced" => await host.SyncedAsync(),
                "users" => (await host.UsersAsync()).ToDictionary(u => u.Key, u => new UserState(u.Value.Version, u.Value.DisplayName)),
                "count" => host.Recorder.Count,
                "batches" => host.Batches.Snapshot() is var (batches, events, seconds) ? new BatchTotals(batches, events, seconds) : null!,
                "events" => host.Recorder.All(),
                _ => throw new InvalidOperationException("unknown question " + question),
            };
            await output.WriteLineAsync(JsonSerializer.Serialize(answer, RemoteRegion.Json));
            await output.FlushAsync();
        }

        return 0;
    }
}
