using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Identity.Server.IntegrationTests.Deployment;

/// <summary>
/// <c>scripts/demo.sh --scripted</c> (issue 19 item 4): Identity on PostgreSQL, the broker with mutual TLS and two
/// regional services start on this machine; a user signs in at eu (and at us by single sign-on), an admin changes the
/// user through the admin API, the change reaches both regions' replicas through the broker; then every process the
/// script started is gone and its folder removed.
/// </summary>
public sealed partial class DemoScriptTests
{
    [Fact]
    public async Task Scripted_SignInChangeAndReplicas_ChangeArrivesInBothRegionsAndNothingIsLeftRunning()
    {
        var (exitCode, output) = await RunAsync(TimeSpan.FromMinutes(6), "--scripted", "--no-build");

        Assert.True(exitCode == 0, $"demo.sh exited {exitCode}:\n{output}");
        Assert.Contains("demo: signed in at eu as alice@contoso.example", output, StringComparison.Ordinal);
        Assert.Contains("demo: signed in at us without a password (single sign-on)", output, StringComparison.Ordinal);
        var name = ChangedName().Match(output);
        Assert.True(name.Success, output);
        foreach (var region in new[] { "eu", "us" })
        {
            Assert.Contains($"demo: region {region}'s replica has \"{name.Groups["name"].Value}\"", output, StringComparison.Ordinal);
        }

        // Every process it announced (Identity, both regions, PostgreSQL, the broker) has ended, and its folder is gone.
        var started = StartedProcesses().Matches(output).Select(m => int.Parse(m.Groups["pid"].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(5, started.Count);
        Assert.All(started, pid => Assert.False(Directory.Exists($"/proc/{pid}"), $"pid {pid} is still running:\n{output}"));
        var folder = DemoFolder().Match(output).Groups["folder"].Value;
        Assert.StartsWith(Path.GetTempPath().TrimEnd('/'), folder, StringComparison.Ordinal);
        Assert.False(Directory.Exists(folder), folder);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(TimeSpan timeout, params string[] arguments)
    {
        var output = new StringBuilder();
        var start = new ProcessStartInfo(DeploymentFiles.PathOf("scripts", "demo.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // The dlls built beside these tests (Release in scripts/test.sh).
        start.Environment["DEMO_CONFIGURATION"] = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"demo.sh did not finish within {timeout}:\n{output}");
        }

        process.WaitForExit(); // the asynchronous readers have drained
        lock (output)
        {
            return (process.ExitCode, output.ToString());
        }
    }

    [GeneratedRegex("""changed the user's name to "(?<name>[^"]+)" through the admin API""")]
    private static partial Regex ChangedName();

    // "demo: started identity (pid 123)", "# postgres: ... (pid 123, DIR)", "# rabbitmq: ... (TLS only; pid 123, DIR)".
    [GeneratedRegex(@"^(demo: started \S+ \(pid (?<pid>\d+)\)|# (postgres|rabbitmq): .* ready on .*pid (?<pid>\d+),)", RegexOptions.Multiline)]
    private static partial Regex StartedProcesses();

    [GeneratedRegex(@"^Logs\s+(?<folder>\S+)/logs$", RegexOptions.Multiline)]
    private static partial Regex DemoFolder();
}
