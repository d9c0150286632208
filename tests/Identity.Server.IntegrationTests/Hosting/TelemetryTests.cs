using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// The Prometheus scrape endpoint (decision 0071), on a real Kestrel server with a public and a management port: after a
/// scripted flow (tokens, a refused token request, sign-ins, an admin change, throttled sign-ins) every metric an
/// operator watches is on the management port's <c>/metrics</c>, with the flow's counts; the public port has no
/// <c>/metrics</c>, and the management port nothing else.
/// </summary>
public sealed partial class TelemetryTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    /// <summary>The authority's metrics as Prometheus names them (dots to underscores, unit suffix, counters' _total).</summary>
    public static readonly string[] AuthorityMetricNames =
    [
        "identity_tokens_issued_total", "identity_token_errors_total", "identity_sign_ins_total", "identity_lockouts_total",
        "identity_mfa_challenges_total", "identity_throttled_total", "identity_keys_active_age_seconds",
        "identity_keys_next_rotation_seconds", "identity_outbox_pending", "identity_outbox_oldest_pending_age_seconds",
        "identity_outbox_publish_failures_total", "identity_outbox_published_total", "identity_outbox_parked",
        "identity_certificates_expiry_seconds", "http_server_request_duration_seconds_count",
    ];

    private static readonly string MonitoringFolder = Deployment.DeploymentFiles.PathOf("deploy", "monitoring");

    [Fact]
    public async Task Scrape_AfterScriptedFlow_ExposesEveryAuthorityMetricOnTheManagementPortOnly()
    {
        var (publicPort, managementPort) = (FreePort(), FreePort());
        var (certificate, key) = KeyRingCertificate();
        var host = fixture.StartServer(s =>
        {
            s["DataProtection:CertificateFile"] = certificate;
            s["DataProtection:KeyFile"] = key;
            s["urls"] = $"http://127.0.0.1:{publicPort}";
            s["Telemetry:ManagementPort"] = managementPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            s["Telemetry:ManagementAddress"] = "127.0.0.1";
            s["Throttling:SignInPerMinute"] = "4";
        });
        host.UseKestrel();
        host.StartServer();
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
        {
            BaseAddress = new Uri($"http://localhost:{publicPort}/"), // the host the redirects name: AuthorizeAsync stops at any other
        };
        using var management = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{managementPort}/") };

        // Tokens: one issued, one refused (a wrong secret).
        var admin = await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync("platform-admin", fixture.BasicSecret, "identity.admin"), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync("platform-admin", "wrong-" + fixture.BasicSecret, "identity.admin"), HttpStatusCode.Unauthorized);
        // A user change through the admin API: a region, an account living in it, a user (outbox rows).
        using var platform = new HttpClient { BaseAddress = http.BaseAddress };
        platform.DefaultRequestHeaders.Authorization = new("Bearer", admin.GetProperty("access_token").GetString());
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, "/admin/v1/regions/eu", """{"displayName":"Europe"}"""), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Telemetry Co","regions":["eu"]}"""), HttpStatusCode.Created);
        // Sign-ins: a right one (through the code flow, then the code redeemed), wrong ones until the throttle refuses.
        var browser = new BrowserSession(null, http);
        var (verifier, challenge) = BrowserSession.Pkce();
        var redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";
        var callback = await browser.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", redirect, challenge, ("scope", "openid")), ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);
        Assert.True(BrowserSession.Query(callback).ContainsKey("code"), callback.ToString());
        await ResponseAssert.StatusAsync(await http.RedeemCodeAsync(callback, verifier, redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var throttled = false;
        for (var attempt = 0; attempt < 6 && !throttled; attempt++)
        {
            throttled = (await browser.SignInAsync("/Account/Login", "nobody@example.test", "wrong")).StatusCode == HttpStatusCode.TooManyRequests;
        }

        Assert.True(throttled);

        var scrape = await management.GetStringAsync("/metrics");
        var missing = AuthorityMetricNames.Where(name => !Regex.IsMatch(scrape, $"^{name}[{{ ]", RegexOptions.Multiline)).ToList();
        Assert.True(missing.Count == 0, "Not on /metrics: " + string.Join(", ", missing));
        Assert.True(Sample(scrape, "identity_tokens_issued_total", "grant_type=\"client_credentials\"") >= 1);
        Assert.True(Sample(scrape, "identity_tokens_issued_total", "grant_type=\"authorization_code\"") >= 1);
        Assert.True(Sample(scrape, "identity_token_errors_total", "error=\"invalid_client\"") >= 1);
        Assert.True(Sample(scrape, "identity_sign_ins_total", "result=\"succeeded\"") >= 1);
        Assert.True(Sample(scrape, "identity_sign_ins_total", "result=\"failed\"") >= 1);
        Assert.True(Sample(scrape, "identity_throttled_total", "endpoint=\"sign_in\"") >= 1);
        Assert.True(Sample(scrape, "identity_certificates_expiry_seconds", "certificate=\"data_protection\"") > 300 * 86400);
        Assert.DoesNotContain(fixture.BasicSecret, scrape, StringComparison.Ordinal);

        // The dashboard and the alert rules name only metrics the scrape has (the regional ones: a region's meter).
        var referenced = MetricReference().Matches(File.ReadAllText(Path.Combine(MonitoringFolder, "identity-dashboard.json"))
                + File.ReadAllText(Path.Combine(MonitoringFolder, "identity-alerts.yml")))
            .Select(m => m.Value).Distinct().ToList();
        Assert.Contains("identity_outbox_oldest_pending_age_seconds", referenced);
        var absent = referenced.Where(name => !name.StartsWith("identity_region_", StringComparison.Ordinal)
            && !Regex.IsMatch(scrape, $"^{name}[{{ ]", RegexOptions.Multiline)).ToList();
        Assert.True(absent.Count == 0, "Named by deploy/monitoring, not on /metrics: " + string.Join(", ", absent));
        Assert.Equal(["identity_region_replica_lag_seconds_bucket"], referenced.Where(n => n.StartsWith("identity_region_", StringComparison.Ordinal)));
        Assert.Equal(("identity.region.replica_lag", (string?)"s"), RegionLagInstrument());

        // Only the management port serves /metrics, and it serves nothing else.
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await management.GetAsync("/.well-known/openid-configuration")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await management.GetAsync("/admin/v1/outbox")).StatusCode);
    }

    /// <summary>The regional meter's lag histogram as the region's service registers it (its Prometheus name: _seconds_bucket).</summary>
    private static (string, string?) RegionLagInstrument()
    {
        var found = ("", (string?)null);
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == Identity.Region.Messaging.RegionMetrics.MeterName && instrument.Name.EndsWith("replica_lag", StringComparison.Ordinal)
                    && instrument is System.Diagnostics.Metrics.Histogram<double>)
                {
                    found = (instrument.Name, instrument.Unit);
                }
            },
        };
        listener.Start();
        var services = new ServiceCollection();
        services.AddMetrics();
        using var provider = services.BuildServiceProvider();
        using var metrics = new Identity.Region.Messaging.RegionMetrics(provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
            Microsoft.Extensions.Options.Options.Create(new Identity.Region.IdentityRegionOptions { Region = "eu" }));
        return found;
    }

    private (string Certificate, string Key) KeyRingCertificate()
    {
        var folder = Directory.CreateTempSubdirectory("identity-telemetry-").FullName;
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=key ring", rsa,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));
        var files = (Path.Combine(folder, "ring.crt"), Path.Combine(folder, "ring.key"));
        File.WriteAllText(files.Item1, certificate.ExportCertificatePem());
        File.WriteAllText(files.Item2, rsa.ExportPkcs8PrivateKeyPem());
        return files;
    }

    /// <summary>The sum of a metric's samples whose labels contain <paramref name="label"/>.</summary>
    private static double Sample(string scrape, string name, string label) =>
        SampleLine().Matches(scrape)
            .Where(m => m.Groups["name"].Value == name && m.Groups["labels"].Value.Contains(label, StringComparison.Ordinal))
            .Sum(m => double.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture));

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [GeneratedRegex(@"\b(identity|http_server)_[a-z_]+\b")]
    private static partial Regex MetricReference();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex SampleLine();
}
