using System.Text.Json.Nodes;

namespace Identity.Server.IntegrationTests.Deployment;

/// <summary>
/// <c>docker-compose.yml</c> (issue 19 item 5), checked by Debian's <c>docker-compose config</c> (no Docker engine runs
/// here, so the model is what can be checked) and the reverse proxy's configuration by <c>nginx -t</c>.
/// </summary>
public sealed class ComposeFileTests
{
    private static readonly Dictionary<string, string> Secrets = new()
    {
        ["MSSQL_SA_PASSWORD"] = "Compose-Test-Password-1",
        ["PLATFORM_ADMIN_SECRET"] = "platform-admin-secret-of-thirty-two-chars",
        ["REGIONAL_SERVICE_SECRET"] = "regional-service-secret-of-thirty-two-chars",
        ["REGION_EU_SECRET"] = "region-eu-secret-of-thirty-two-characters",
        ["REGION_US_SECRET"] = "region-us-secret-of-thirty-two-characters",
    };

    [Fact]
    public async Task Config_EverySecretSet_WholeTopologyWithTwoReplicasBehindTheProxy()
    {
        var services = (await ConfigAsync(Secrets))["services"]!.AsObject();

        Assert.Equal(["identity-1", "identity-2", "identity-migrate", "proxy", "rabbitmq", "region-eu", "region-us", "sqlserver"],
            services.Select(s => s.Key).Order(StringComparer.Ordinal));
        var one = services["identity-1"]!;
        var two = services["identity-2"]!;
        Assert.Equal(one["environment"]!.ToJsonString(), two["environment"]!.ToJsonString()); // replicas are identical
        Assert.Equal("SqlServer", (string?)one["environment"]!["Database__Provider"]);
        Assert.Equal("service_completed_successfully", (string?)one["depends_on"]!["identity-migrate"]!["condition"]);
        Assert.Equal(["migrate"], services["identity-migrate"]!["command"]!.AsArray().Select(c => (string?)c));

        // The broker: mutual TLS from the development CA; Identity and each region connect with their own certificate.
        Assert.Equal("/certs/identity.pfx", (string?)one["environment"]!["Broker__ClientCertificatePath"]);
        Assert.Equal("/certs/region-eu.pfx", (string?)services["region-eu"]!["environment"]!["Broker__ClientCertificatePath"]);
        Assert.Equal("/certs/region-us.pfx", (string?)services["region-us"]!["environment"]!["Broker__ClientCertificatePath"]);
        Assert.Contains(services["rabbitmq"]!["volumes"]!.AsArray(), v => v!.ToJsonString().Contains("/etc/rabbitmq/conf.d/10-defaults.conf", StringComparison.Ordinal));

        // The proxy is the only known proxy, and the mTLS alias is its own name (decision 0047: not the issuer's host).
        var proxy = services["proxy"]!["networks"]!["identity"]!;
        Assert.Equal((string?)proxy["ipv4_address"], (string?)one["environment"]!["ForwardedHeaders__KnownProxies__0"]);
        Assert.Contains("identity-mtls", proxy["aliases"]!.AsArray().Select(a => (string?)a));
        Assert.Equal("https://identity-mtls:8443/", (string?)one["environment"]!["Mtls__BaseUri"]);
        Assert.Equal("ssl-client-cert", (string?)one["environment"]!["Mtls__ForwardedCertificateHeader"]);
        Assert.All(new[] { "region-eu", "region-us" }, r => Assert.Equal("service:proxy", (string?)services[r]!["network_mode"]));

        // Non-root everywhere: our images end as UID 1654 on a chiseled base; the broker and proxy images run unprivileged.
        foreach (var dockerfile in new[] { "Dockerfile", "RegionSample.Dockerfile" })
        {
            var lines = await File.ReadAllLinesAsync(DeploymentFiles.PathOf("deploy", dockerfile));
            Assert.Equal("USER 1654", lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal)));
            Assert.Contains(lines, l => l.StartsWith("FROM mcr.microsoft.com/dotnet/aspnet:", StringComparison.Ordinal) && l.Contains("chiseled", StringComparison.Ordinal));
        }

        Assert.Equal("rabbitmq", (string?)services["rabbitmq"]!["user"]);
        Assert.Contains("nginx-unprivileged", (string?)services["proxy"]!["image"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Config_SecretMissing_RefusedNamingTheVariable()
    {
        var withoutAdmin = Secrets.Where(s => s.Key != "PLATFORM_ADMIN_SECRET").ToDictionary();

        var (exitCode, _, errors) = await RunComposeAsync(withoutAdmin, "config");

        Assert.NotEqual(0, exitCode);
        Assert.Contains("PLATFORM_ADMIN_SECRET", errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProxyConfiguration_WithTheDevelopmentCertificates_NginxAcceptsItAndNamesBothReplicas()
    {
        var folder = Directory.CreateTempSubdirectory("identity-compose-").FullName;
        try
        {
            var certs = Path.Combine(folder, "certs");
            var setup = await DeploymentFiles.RunAsync(DeploymentFiles.PathOf("deploy", "compose-setup.sh"), [certs], TimeSpan.FromMinutes(1));
            Assert.True(setup.ExitCode == 0, setup.Errors);
            var proxy = await File.ReadAllTextAsync(DeploymentFiles.PathOf("deploy", "nginx", "identity.conf"));
            Assert.Contains("server identity-1:8080", proxy, StringComparison.Ordinal);
            Assert.Contains("server identity-2:8080", proxy, StringComparison.Ordinal);

            // The replicas' names resolve only inside compose: here they are this machine.
            await File.WriteAllTextAsync(Path.Combine(folder, "identity.conf"), proxy
                .Replace("identity-1:", "127.0.0.1:", StringComparison.Ordinal).Replace("identity-2:", "127.0.0.2:", StringComparison.Ordinal)
                .Replace("/certs/", certs + "/", StringComparison.Ordinal));
            await File.WriteAllTextAsync(Path.Combine(folder, "nginx.conf"), $$"""
                pid {{folder}}/nginx.pid;
                error_log {{folder}}/error.log;
                events {}
                http { include {{folder}}/identity.conf; }
                """);

            var (exitCode, output, errors) = await DeploymentFiles.RunAsync("/usr/sbin/nginx", ["-t", "-q", "-c", Path.Combine(folder, "nginx.conf")],
                TimeSpan.FromMinutes(1));
            Assert.True(exitCode == 0, output + errors);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<JsonNode> ConfigAsync(Dictionary<string, string> environment)
    {
        var (exitCode, output, errors) = await RunComposeAsync(environment, "config");
        Assert.True(exitCode == 0, $"docker-compose config exited {exitCode}: {errors}");
        return Assert.Single(DeploymentFiles.YamlDocuments(output));
    }

    /// <summary>Debian's docker-compose (scripts/test.sh installs it) with these variables and no .env file.</summary>
    private static Task<(int ExitCode, string Output, string Errors)> RunComposeAsync(Dictionary<string, string> environment, params string[] arguments)
    {
        var empty = Path.GetTempFileName();
        var settings = new Dictionary<string, string>(environment);
        foreach (var name in Secrets.Keys.Where(k => !environment.ContainsKey(k)))
        {
            settings[name] = ""; // unset for compose: an empty value is refused like a missing one
        }

        return RunAndDeleteAsync();

        async Task<(int, string, string)> RunAndDeleteAsync()
        {
            try
            {
                return await DeploymentFiles.RunAsync("docker-compose",
                    ["--env-file", empty, "-f", DeploymentFiles.PathOf("docker-compose.yml"), .. arguments], TimeSpan.FromMinutes(1), settings);
            }
            finally
            {
                File.Delete(empty);
            }
        }
    }
}
