using System.Net;
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
        var (publicPort, managementPort) = (TestPorts.Next(), TestPorts.Next());
        var (certificate, key) = KeyRingCertificate();
        var host = fixture.StartServer(s =>
        {
            s["DataProtection:CertificateFile"] = certificate;
            s["DataProtection:KeyFile"] = key;
            s["urls"] = $"http://127.0.0.1:{publicPort}";
            s["Telemetry:ManagementPort"] = managementPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            s["Telemetry:ManagementAddress"] = "127.0.0.1";
            s["Throttling:SignInPerMinute"] = "10"; // the password and second-factor steps below, then wrong ones until refused
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
        // A second factor by TOTP: a user enrols an authenticator, then signs in with a wrong code and the right one.
        await TotpChallengesAsync(http.BaseAddress);
        var throttled = false;
        for (var attempt = 0; attempt < 12 && !throttled; attempt++)
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
        Assert.True(Sample(scrape, "identity_mfa_challenges_total", "factor=\"totp\"", "result=\"succeeded\"") >= 1);
        Assert.True(Sample(scrape, "identity_mfa_challenges_total", "factor=\"totp\"", "result=\"failed\"") >= 1);
        // The signing keys: one per algorithm has signed for a while (at least 0 s) and its successor is due ahead.
        Assert.Matches(new Regex("^identity_keys_active_age_seconds\\{[^}]*algorithm=\"RS256\"[^}]*\\} [0-9]", RegexOptions.Multiline), scrape);
        Assert.True(Sample(scrape, "identity_keys_next_rotation_seconds", "algorithm=\"RS256\"") > 0);
        Assert.True(Sample(scrape, "identity_certificates_expiry_seconds", "certificate=\"data_protection\"") > 300 * 86400);
        Assert.DoesNotContain(fixture.BasicSecret, scrape, StringComparison.Ordinal);
        // The runtime's own meter: the bytes allocated so far (bench/authcode-bench.sh divides them by the round trips).
        Assert.True(Sample(scrape, "dotnet_gc_heap_total_allocated_bytes_total") > 1_000_000);

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

    private async Task TotpChallengesAsync(Uri baseAddress)
    {
        const string password = "Correct-Horse-Battery-9";
        var email = $"telemetry-mfa-{Guid.NewGuid():n}@example.test";
        await fixture.CreateUserAsync(email, password);
        BrowserSession Browser() => new(null, new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
        {
            BaseAddress = baseAddress,
        });

        var enrolling = Browser();
        await enrolling.SignInAsync("/Account/Login", email, password);
        var page = await ResponseAssert.HtmlAsync(await enrolling.GetAsync("/Account/Totp"), HttpStatusCode.OK);
        var secret = TotpSecretOnPage().Match(page).Groups[1].Value;
        await ResponseAssert.HtmlAsync(await enrolling.SubmitAsync("/Account/Totp", page,
            new Dictionary<string, string> { ["code"] = TotpCode(secret, DateTime.UtcNow.AddSeconds(-30)) }), HttpStatusCode.OK);

        var signingIn = Browser();
        await signingIn.SignInAsync("/Account/Login?ReturnUrl=%2F", email, password);
        foreach (var code in new[] { "000000", TotpCode(secret, DateTime.UtcNow) })
        {
            var twoFactor = await ResponseAssert.HtmlAsync(await signingIn.GetAsync("/Account/TwoFactor?ReturnUrl=%2F"), HttpStatusCode.OK);
            await signingIn.SubmitAsync("/Account/TwoFactor?handler=Totp", twoFactor, new Dictionary<string, string> { ["code"] = code });
        }
    }

    private static string TotpCode(string secret, DateTime at) => new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).ComputeTotp(at);

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

    /// <summary>The sum of a metric's samples whose labels contain every one of <paramref name="labels"/>.</summary>
    private static double Sample(string scrape, string name, params string[] labels) =>
        SampleLine().Matches(scrape)
            .Where(m => m.Groups["name"].Value == name && labels.All(label => m.Groups["labels"].Value.Contains(label, StringComparison.Ordinal)))
            .Sum(m => double.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture));


    [GeneratedRegex("<code id=\"totp-secret\">([A-Z2-7]+)</code>")]
    private static partial Regex TotpSecretOnPage();

    [GeneratedRegex(@"\b(identity|http_server)_[a-z_]+\b")]
    private static partial Regex MetricReference();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex SampleLine();
}
