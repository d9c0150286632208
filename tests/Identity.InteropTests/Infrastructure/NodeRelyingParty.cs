using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;

namespace Identity.InteropTests.Infrastructure;

/// <summary>A client as openid-client is told about it: its id and how it authenticates at the token endpoint.</summary>
public sealed record RelyingPartyClient(string Id, string Auth, string? Secret = null, JsonObject? PrivateJwk = null)
{
    public JsonObject ToJson() => new()
    {
        ["id"] = Id,
        ["auth"] = Auth,
        ["secret"] = Secret,
        ["privateJwk"] = PrivateJwk?.DeepClone(),
    };
}

/// <summary>What one step of <c>rp-node/rp.mjs</c> answered: <c>ok</c> and the step's fields, or the error it met.</summary>
public sealed class RelyingPartyResult(JsonObject json)
{
    public bool Ok => json["ok"]?.GetValue<bool>() == true;

    /// <summary>The OAuth error code (RFC 6749 §5.2, or an authorization response's), when the step failed with one.</summary>
    public string? Error => json["error"]?["error"]?.GetValue<string>();

    public string Text(params string[] path) => Node(path).GetValue<string>();

    public JsonNode Node(params string[] path)
    {
        JsonNode? node = json;
        foreach (var name in path)
        {
            node = node?[name];
        }

        return node ?? throw new KeyNotFoundException($"No '{string.Join('.', path)}' in {json.ToJsonString()}");
    }

    /// <summary>The step succeeded; else the test fails with the library's own words.</summary>
    public RelyingPartyResult AssertOk()
    {
        Assert.True(Ok, $"openid-client failed: {json["error"]?.ToJsonString()}");
        return this;
    }

    public override string ToString() => json.ToJsonString();
}

/// <summary>openid-client as one client of one issuer (the issuer exactly as Identity is configured with it).</summary>
public sealed class NodeRelyingParty(OpenIdClientProcess process, string issuer, RelyingPartyClient client)
{
    public Task<RelyingPartyResult> RunAsync(string step, JsonObject? input = null)
    {
        var request = input?.DeepClone().AsObject() ?? [];
        request["step"] = step;
        request["issuer"] = issuer;
        request["client"] = client.ToJson();
        return process.SendAsync(request);
    }
}

/// <summary>
/// One <c>node rp-node/rp.mjs</c> for a fixture's lifetime (openid-client from npm, pinned in its package-lock.json):
/// a request per line in, an answer per line out. Its dependencies are installed with <c>npm ci</c> on first use;
/// without node or the npm registry the tests fail, saying so (they never skip).
/// </summary>
public sealed class OpenIdClientProcess : IAsyncDisposable
{
    private static readonly Lazy<Task> Installation = new(InstallAsync);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _node;
    private readonly StringBuilder _stderr = new();
    private readonly SemaphoreSlim _turn = new(1, 1);

    private OpenIdClientProcess(Process node)
    {
        _node = node;
        _node.ErrorDataReceived += (_, e) =>
        {
            lock (_stderr)
            {
                _stderr.AppendLine(e.Data);
            }
        };
        _node.BeginErrorReadLine();
    }

    /// <summary>The folder of <c>rp.mjs</c> in the source tree (its <c>node_modules</c> stay there, ignored by git).</summary>
    public static string Directory { get; } = typeof(OpenIdClientProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RelyingPartyDirectory").Value!;

    public static async Task<OpenIdClientProcess> StartAsync()
    {
        await Installation.Value;
        return new OpenIdClientProcess(Start("node", ["rp.mjs"]));
    }

    public async Task<RelyingPartyResult> SendAsync(JsonObject request)
    {
        await _turn.WaitAsync();
        try
        {
            await _node.StandardInput.WriteLineAsync(request.ToJsonString());
            await _node.StandardInput.FlushAsync();
            using var timeout = new CancellationTokenSource(StepTimeout);
            var line = await _node.StandardOutput.ReadLineAsync(timeout.Token)
                ?? throw new InvalidOperationException($"node rp.mjs ended during step {request["step"]}:\n{Stderr()}");
            return new RelyingPartyResult(JsonNode.Parse(line)!.AsObject());
        }
        finally
        {
            _turn.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _node.StandardInput.Close(); // rp.mjs ends when its input does
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _node.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _node.Kill(entireProcessTree: true);
        }

        _node.Dispose();
        _turn.Dispose();
    }

    private string Stderr()
    {
        lock (_stderr)
        {
            return _stderr.ToString();
        }
    }

    private static async Task InstallAsync()
    {
        if (File.Exists(Path.Combine(Directory, "node_modules", "openid-client", "package.json")))
        {
            return;
        }

        // A fresh clone (CI): exactly the versions of package-lock.json.
        using var npm = Start("npm", ["ci", "--no-audit", "--no-fund"]);
        npm.StandardInput.Close();
        var stdout = npm.StandardOutput.ReadToEndAsync();
        var stderr = npm.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await npm.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            npm.Kill(entireProcessTree: true);
            throw new TimeoutException($"'npm ci' in {Directory} took more than 5 minutes: is the npm registry reachable?");
        }

        if (npm.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"'npm ci' failed in {Directory} (exit {npm.ExitCode}): the interop tests need node, npm and the npm registry.\n{await stderr}\n{await stdout}");
        }
    }

    private static Process Start(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = Directory,
            RedirectStandardInput = true,
            StandardInputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"'{program}' cannot be run ({ex.Message}): the interop tests need Node.js 20 or later with npm.", ex);
        }
    }
}
