using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
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

    public JsonNode this[string name] => json[name] ?? throw new KeyNotFoundException($"No '{name}' in {json.ToJsonString()}");

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

/// <summary>
/// openid-client (npm, pinned in <c>rp-node/package-lock.json</c>) run with <c>node</c>, one step per process, against
/// the issuer exactly as Identity is configured with it. The dependencies are installed with <c>npm ci</c> on first use.
/// </summary>
public sealed class NodeRelyingParty(string issuer, RelyingPartyClient client)
{
    private static readonly Lazy<Task> Installation = new(InstallAsync);

    public static string Directory { get; } = typeof(NodeRelyingParty).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RelyingPartyDirectory").Value!;

    /// <summary>Fails (never skips) when node or the npm registry is missing: the interop tests need both.</summary>
    public static Task EnsureInstalledAsync() => Installation.Value;

    public async Task<RelyingPartyResult> RunAsync(string step, JsonObject? input = null)
    {
        await EnsureInstalledAsync();
        input ??= [];
        input["issuer"] = issuer;
        input["client"] = client.ToJson();
        var (exitCode, stdout, stderr) = await RunProcessAsync("node", ["rp.mjs", step], input.ToJsonString(), TimeSpan.FromSeconds(30));
        var last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        if (exitCode != 0 || last is null)
        {
            throw new InvalidOperationException($"node rp.mjs {step} exited {exitCode}:\n{stderr}\n{stdout}");
        }

        return new RelyingPartyResult(JsonNode.Parse(last)!.AsObject());
    }

    private static async Task InstallAsync()
    {
        if (File.Exists(Path.Combine(Directory, "node_modules", "openid-client", "package.json")))
        {
            return;
        }

        // A fresh clone (CI): the pinned versions of package-lock.json, nothing else.
        var (exitCode, stdout, stderr) = await RunProcessAsync("npm", ["ci", "--no-audit", "--no-fund"], null, TimeSpan.FromMinutes(5));
        if (exitCode != 0)
        {
            throw new InvalidOperationException(
                $"'npm ci' failed in {Directory} (exit {exitCode}): the interop tests need node, npm and the npm registry.\n{stderr}\n{stdout}");
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunProcessAsync(
        string program, string[] arguments, string? stdin, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = Directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"'{program}' cannot be run ({ex.Message}): the interop tests need Node.js 20 or later with npm.", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin);
            }

            process.StandardInput.Close();
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish within {timeout}.");
            }

            return (process.ExitCode, await stdout, await stderr);
        }
    }

    /// <summary>The claims of a JWT's payload (no validation: openid-client has validated what it returned).</summary>
    public static JsonElement Payload(string jwt) =>
        JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(jwt.Split('.')[1])).RootElement;
}
