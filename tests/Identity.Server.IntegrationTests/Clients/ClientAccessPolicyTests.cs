using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Clients;

/// <summary>
/// A client's IP allow-list (token, introspection, revocation) and token rate limit, set through the admin API or
/// declared. Addresses are real socket peers: a network namespace's (a non-loopback IPv4 peer, as from another
/// machine), IPv6 and IPv4-mapped loopback on Kestrel, and a configured proxy's X-Forwarded-For.
/// </summary>
public sealed class ClientAccessPolicyTests(ServerFixture<SqliteTestDatabase> fixture, NetworkNamespace network)
    : IClassFixture<ServerFixture<SqliteTestDatabase>>, IClassFixture<NetworkNamespace>
{
    private static readonly string[] Endpoints = ["/connect/token", "/connect/introspect", "/connect/revoke"];

    /// <summary>A client-credentials client made through the admin API, with <paramref name="policy"/> added to its body.</summary>
    private async Task<(string Id, string Secret)> CreateClientAsync(string policy)
    {
        var platform = await fixture.PlatformAdminAsync();
        var clientId = "svc-acl-" + Guid.NewGuid().ToString("n")[..10];
        var created = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients",
            $$"""{"clientId":"{{clientId}}","grantTypes":["client_credentials"],"scopes":["api.read"]{{policy}}}"""), HttpStatusCode.Created);
        return (clientId, created.GetProperty("clientSecret").GetString()!);
    }

    /// <summary>The real server on Kestrel at <paramref name="address"/>; <paramref name="fromNamespace"/>: its client lives in the namespace.</summary>
    private (IdentityServerHost Host, HttpClient Client) StartOnKestrel(IPAddress address, bool fromNamespace, Action<Dictionary<string, string?>>? change = null)
    {
        var port = TestPorts.Next();
        var host = fixture.StartServer(change);
        host.UseKestrel(kestrel => kestrel.Listen(address, port));
        host.StartServer();
        if (fromNamespace)
        {
            return (host, network.Client(new Uri($"http://{network.HostAddress}:{port}/")));
        }

        // A dual-stack listener ([::]) is reached at 127.0.0.1: the server sees the IPv4-mapped ::ffff:127.0.0.1.
        var target = address.Equals(IPAddress.IPv6Any) ? "127.0.0.1" : address.ToString().Contains(':', StringComparison.Ordinal) ? $"[{address}]" : address.ToString();
        return (host, new HttpClient { BaseAddress = new Uri($"http://{target}:{port}/") });
    }


    /// <summary>Another in-memory server on the fixture's database whose clock the test moves (the rate limiter's time).</summary>
    private WebApplicationFactory<Program> WithClock(TestClock clock) =>
        fixture.Server.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(clock)));

    private static Task<HttpResponseMessage> CallAsync(HttpClient client, string endpoint, (string Id, string Secret) credentials, string token) =>
        endpoint == "/connect/token"
            ? client.ClientCredentialsAsync(credentials.Id, credentials.Secret, "api.read")
            : client.PostFormAsync(endpoint, [new("token", token)], credentials);

    private async Task<string> SomeAccessTokenAsync() =>
        (await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read"), HttpStatusCode.OK))
            .GetProperty("access_token").GetString()!;

    private async Task<List<AuditEntry>> RefusalsOfAsync(string clientId)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.AuditEntries.AsNoTracking().Where(e => e.ClientId == clientId && (e.EventType == "client.access_refused" || e.EventType == "token.failed"))
            .OrderBy(e => e.Id).ToListAsync();
    }

    [Fact]
    public async Task Endpoints_PeerOutsideTheAllowList_InvalidClientExactlyAsAWrongSecret_AndAuditedWithThePeerAddress()
    {
        // Arrange: the client may call from 192.0.2.0/24 only; the caller is the namespace's 10.213.x.y.
        var client = await CreateClientAsync(""","allowedIpRanges":["192.0.2.0/24","2001:db8::/32"]""");
        var token = await SomeAccessTokenAsync();
        var (_, http) = StartOnKestrel(network.HostAddress, fromNamespace: true);

        foreach (var endpoint in Endpoints)
        {
            // Act
            var refused = await CallAsync(http, endpoint, client, token);
            var wrongSecret = await CallAsync(http, endpoint, (client.Id, "wrong-" + client.Secret), token);

            // Assert: RFC 6749 §5.2 invalid_client, 401, and nothing that tells it from a wrong secret.
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal(await wrongSecret.Content.ReadAsStringAsync(), await refused.Content.ReadAsStringAsync());
            Assert.Equal(wrongSecret.Headers.WwwAuthenticate.ToString(), refused.Headers.WwwAuthenticate.ToString());
            Assert.Equal("invalid_client", (await refused.JsonAsync()).GetProperty("error").GetString());
        }

        var audit = (await RefusalsOfAsync(client.Id)).Where(e => e.EventType == "client.access_refused").ToList();
        Assert.Equal(3, audit.Count);
        Assert.All(audit, e => Assert.Equal(network.PeerAddress.ToString(), e.IpAddress));
        Assert.Equal(["token", "introspection", "revocation"],
            audit.Select(e => JsonDocument.Parse(e.Details!).RootElement.GetProperty("endpoint").GetString()));
        Assert.All(audit, e => Assert.Equal("ip_not_allowed", JsonDocument.Parse(e.Details!).RootElement.GetProperty("reason").GetString()));
    }

    [Fact]
    public async Task Token_PeerInsideAnIPv4Range_Issued_AndAnotherClientUnaffected()
    {
        var inside = await CreateClientAsync(""","allowedIpRanges":["192.0.2.0/24","10.213.0.0/16"]""");
        var outside = await CreateClientAsync(""","allowedIpRanges":["192.0.2.0/24"]""");
        var (_, http) = StartOnKestrel(network.HostAddress, fromNamespace: true);

        var allowed = await http.ClientCredentialsAsync(inside.Id, inside.Secret, "api.read");
        var refused = await http.ClientCredentialsAsync(outside.Id, outside.Secret, "api.read");
        var unrestricted = await http.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read");

        await ResponseAssert.StatusAsync(allowed, HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(refused, HttpStatusCode.Unauthorized);
        await ResponseAssert.StatusAsync(unrestricted, HttpStatusCode.OK);
    }

    [Fact]
    public async Task Token_IPv6Peer_MatchedAgainstIPv6Ranges()
    {
        var loopback = await CreateClientAsync(""","allowedIpRanges":["10.0.0.0/8","::1/128"]""");
        var documentation = await CreateClientAsync(""","allowedIpRanges":["2001:db8::/32"]""");
        var (_, http) = StartOnKestrel(IPAddress.IPv6Loopback, fromNamespace: false);

        await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync(loopback.Id, loopback.Secret, "api.read"), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync(documentation.Id, documentation.Secret, "api.read"), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Token_IPv4MappedPeerOfADualStackSocket_MatchedAgainstIPv4Ranges()
    {
        // Arrange: Kestrel on [::] sees 127.0.0.1 as ::ffff:127.0.0.1.
        var v4 = await CreateClientAsync(""","allowedIpRanges":["127.0.0.0/8"]""");
        var elsewhere = await CreateClientAsync(""","allowedIpRanges":["10.0.0.0/8","::1/128"]""");
        var (host, http) = StartOnKestrel(IPAddress.IPv6Any, fromNamespace: false);

        await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync(v4.Id, v4.Secret, "api.read"), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync(elsewhere.Id, elsewhere.Secret, "api.read"), HttpStatusCode.Unauthorized);
        var audit = Assert.Single(await RefusalsOfAsync(elsewhere.Id), e => e.EventType == "client.access_refused");
        Assert.Equal("::ffff:127.0.0.1", audit.IpAddress);
        _ = host;
    }

    [Fact]
    public async Task Token_ForwardedForFromAConfiguredProxy_AllowListSeesTheForwardedIPv6Address()
    {
        var client = await CreateClientAsync(""","allowedIpRanges":["2001:db8::/32"]""");
        var (_, http) = StartOnKestrel(network.HostAddress, fromNamespace: true,
            settings => settings["ForwardedHeaders:KnownProxies:0"] = network.PeerAddress.ToString());

        http.DefaultRequestHeaders.Add("X-Forwarded-For", "2001:db8::5");
        var inside = await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read");
        http.DefaultRequestHeaders.Remove("X-Forwarded-For");
        http.DefaultRequestHeaders.Add("X-Forwarded-For", "2001:db9::5");
        var outside = await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read");

        await ResponseAssert.StatusAsync(inside, HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(outside, HttpStatusCode.Unauthorized);
        Assert.Equal("2001:db9::5", Assert.Single(await RefusalsOfAsync(client.Id), e => e.EventType == "client.access_refused").IpAddress);
    }

    [Fact]
    public async Task Token_ForgedForwardedForFromAnUntrustedPeer_Ignored()
    {
        var client = await CreateClientAsync(""","allowedIpRanges":["192.0.2.0/24"]""");
        var (_, http) = StartOnKestrel(network.HostAddress, fromNamespace: true);
        http.DefaultRequestHeaders.Add("X-Forwarded-For", "192.0.2.10");

        await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read"), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Token_OverTheRateLimit_429WithRetryAfterAndTemporarilyUnavailable_RefilledAfterTheWindow()
    {
        // Arrange: 3 per minute, on a clock the test moves.
        var client = await CreateClientAsync(""","tokenRateLimit":{"permits":3,"window":"00:01:00"}""");
        var clock = new TestClock();
        await using var clocked = WithClock(clock);
        using var http = clocked.CreateClient();

        // Act
        var first = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            first.Add((await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read")).StatusCode);
        }

        var limited = await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read");
        var other = await http.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read");
        clock.Advance(TimeSpan.FromSeconds(20));
        var oneBack = await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read");
        var againLimited = await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read");
        clock.Advance(TimeSpan.FromMinutes(1));
        var refilled = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            refilled.Add((await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read")).StatusCode);
        }

        // Assert: RFC 6585 §4 with Retry-After (a permit comes back every 20 s), RFC 6749 JSON.
        Assert.All(first, s => Assert.Equal(HttpStatusCode.OK, s));
        var body = await ResponseAssert.StatusAsync(limited, (HttpStatusCode)429);
        Assert.Equal("temporarily_unavailable", body.GetProperty("error").GetString());
        Assert.Equal(TimeSpan.FromSeconds(20), limited.Headers.RetryAfter?.Delta);
        Assert.Equal("no-store", limited.Headers.CacheControl?.ToString());
        await ResponseAssert.StatusAsync(other, HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(oneBack, HttpStatusCode.OK);
        Assert.Equal((HttpStatusCode)429, againLimited.StatusCode);
        Assert.All(refilled, s => Assert.Equal(HttpStatusCode.OK, s));

        // One audit row for the refusals of a minute, none as token.failed; the second minute's row counts its own.
        var audit = await RefusalsOfAsync(client.Id);
        Assert.DoesNotContain(audit, e => e.EventType == "token.failed");
        var row = Assert.Single(audit);
        var details = JsonDocument.Parse(row.Details!).RootElement;
        Assert.Equal("rate_limited", details.GetProperty("reason").GetString());
        Assert.Equal("token", details.GetProperty("endpoint").GetString());
    }

    [Fact]
    public async Task Token_RateLimitedFlood_AuditedOncePerMinuteWithTheCount()
    {
        var client = await CreateClientAsync(""","tokenRateLimit":{"permits":1,"window":"01:00:00"}""");
        var clock = new TestClock();
        await using var clocked = WithClock(clock);
        using var http = clocked.CreateClient();

        await ResponseAssert.StatusAsync(await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read"), HttpStatusCode.OK);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal((HttpStatusCode)429, (await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read")).StatusCode);
        }

        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal((HttpStatusCode)429, (await http.ClientCredentialsAsync(client.Id, client.Secret, "api.read")).StatusCode);

        var rows = await RefusalsOfAsync(client.Id);
        Assert.Equal(2, rows.Count);
        Assert.Equal([1L, 20L], rows.Select(r => JsonDocument.Parse(r.Details!).RootElement.GetProperty("refused").GetInt64()));
    }

    [Fact]
    public async Task Token_ThirtyConcurrentRequests_ExactlyThePermitsSucceed()
    {
        var client = await CreateClientAsync(""","tokenRateLimit":{"permits":10,"window":"01:00:00"}""");
        using var start = new SemaphoreSlim(0);
        var requests = Enumerable.Range(0, 30).Select(async _ =>
        {
            await start.WaitAsync();
            return (await fixture.Client.ClientCredentialsAsync(client.Id, client.Secret, "api.read")).StatusCode;
        }).ToList();

        start.Release(30);
        var statuses = await Task.WhenAll(requests);

        Assert.Equal(10, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(20, statuses.Count(s => s == (HttpStatusCode)429));
    }

    [Fact]
    public async Task Refusals_Counted_OnTheMeterByReasonAndEndpoint()
    {
        var meters = fixture.Server.Services.GetRequiredService<IMeterFactory>();
        var counted = new List<(long Value, string Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name == "identity.client_access.refusals")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            lock (counted)
            {
                counted.Add((value, string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}").Order(StringComparer.Ordinal))));
            }
        });
        listener.Start();
        var limited = await CreateClientAsync(""","tokenRateLimit":{"permits":1,"window":"01:00:00"}""");
        var fenced = await CreateClientAsync(""","allowedIpRanges":["192.0.2.0/24"]""");

        await fixture.Client.ClientCredentialsAsync(limited.Id, limited.Secret, "api.read");
        await fixture.Client.ClientCredentialsAsync(limited.Id, limited.Secret, "api.read");
        await fixture.Client.PostFormAsync("/connect/revoke", [new("token", "x")], fenced);

        lock (counted)
        {
            Assert.Contains((1L, "endpoint=token,reason=rate_limited"), counted);
            Assert.Contains((1L, "endpoint=revocation,reason=ip_not_allowed"), counted);
        }
    }

    [Fact]
    public async Task AdminChange_TakesEffectAtTheNextRequest()
    {
        // Arrange: no policy; the in-memory server's requests have no address (an allow-list refuses an unknown one).
        var client = await CreateClientAsync("");
        var platform = await fixture.PlatformAdminAsync();
        await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(client.Id, client.Secret, "api.read"), HttpStatusCode.OK);

        // Act / Assert: an allow-list, then a limit of one instead, each honoured by the very next request.
        var etag = (await platform.GetAsync($"/admin/v1/clients/{client.Id}")).Headers.ETag!.Tag;
        var fenced = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/clients/{client.Id}",
            """{"grantTypes":["client_credentials"],"scopes":["api.read"],"allowedIpRanges":["192.0.2.0/24"]}""", etag), HttpStatusCode.OK);
        Assert.Equal(["192.0.2.0/24"], fenced.GetProperty("allowedIpRanges").EnumerateArray().Select(r => r.GetString()));
        await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(client.Id, client.Secret, "api.read"), HttpStatusCode.Unauthorized);

        etag = (await platform.GetAsync($"/admin/v1/clients/{client.Id}")).Headers.ETag!.Tag;
        var limited = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/clients/{client.Id}",
            """{"grantTypes":["client_credentials"],"scopes":["api.read"],"tokenRateLimit":{"permits":1,"window":"00:10:00"}}""", etag), HttpStatusCode.OK);
        Assert.Equal(1, limited.GetProperty("tokenRateLimit").GetProperty("permits").GetInt32());
        Assert.Equal("00:10:00", limited.GetProperty("tokenRateLimit").GetProperty("window").GetString());
        Assert.Empty(limited.GetProperty("allowedIpRanges").EnumerateArray());
        await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(client.Id, client.Secret, "api.read"), HttpStatusCode.OK);
        Assert.Equal((HttpStatusCode)429, (await fixture.Client.ClientCredentialsAsync(client.Id, client.Secret, "api.read")).StatusCode);
    }

    public static TheoryData<string, string> InvalidPolicies => new()
    {
        { "allowedIpRanges[1]", """{"grantTypes":["client_credentials"],"allowedIpRanges":["10.0.0.0/8","10.1.0.0/8"]}""" },
        { "allowedIpRanges[0]", """{"grantTypes":["client_credentials"],"allowedIpRanges":["10.0.0.1"]}""" },
        { "allowedIpRanges[0]", """{"grantTypes":["client_credentials"],"allowedIpRanges":["fe80::/10%eth0"]}""" },
        { "allowedIpRanges[0]", """{"grantTypes":["client_credentials"],"allowedIpRanges":[null]}""" },
        { "allowedIpRanges", $$"""{"grantTypes":["client_credentials"],"allowedIpRanges":[{{string.Join(",", Enumerable.Range(0, 101).Select(i => $"\"10.{i}.0.0/16\""))}}]}""" },
        { "allowedIpRanges", """{"grantTypes":["client_credentials"],"allowedIpRanges":"10.0.0.0/8"}""" },
        { "tokenRateLimit.permits", """{"grantTypes":["client_credentials"],"tokenRateLimit":{"permits":0,"window":"00:01:00"}}""" },
        { "tokenRateLimit.permits", """{"grantTypes":["client_credentials"],"tokenRateLimit":{"window":"00:01:00"}}""" },
        { "tokenRateLimit.window", """{"grantTypes":["client_credentials"],"tokenRateLimit":{"permits":5,"window":"00:00:00.5"}}""" },
        { "tokenRateLimit.window", """{"grantTypes":["client_credentials"],"tokenRateLimit":{"permits":5,"window":"02:00:00"}}""" },
        { "tokenRateLimit.window", """{"grantTypes":["client_credentials"],"tokenRateLimit":{"permits":5,"window":"soon"}}""" },
        { "tokenRateLimit", """{"authenticationMethod":"none","grantTypes":["authorization_code"],"scopes":["openid"],"redirectUris":["https://spa.test/cb"],"tokenRateLimit":{"permits":5,"window":"00:01:00"}}""" },
    };

    [Theory]
    [MemberData(nameof(InvalidPolicies))]
    public async Task CreateClient_InvalidAccessPolicy_ProblemNamingTheField(string field, string json)
    {
        var platform = await fixture.PlatformAdminAsync();

        var response = await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients", json);

        var problem = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task DeclaredClient_AllowListAndLimitFromConfiguration_ShownAndEnforced()
    {
        var (host, http) = StartOnKestrel(network.HostAddress, fromNamespace: true, settings =>
        {
            settings["Oidc:Clients:10:ClientId"] = "svc-declared-acl";
            settings["Oidc:Clients:10:GrantTypes:0"] = "client_credentials";
            settings["Oidc:Clients:10:Scopes:0"] = "api.read";
            settings["Oidc:Clients:10:SecretFile"] = fixture.SecretFile("svc-basic");
            settings["Oidc:Clients:10:AllowedIpRanges:0"] = network.PeerAddress + "/32";
            settings["Oidc:Clients:10:TokenRateLimit:Permits"] = "2";
            settings["Oidc:Clients:10:TokenRateLimit:Window"] = "00:30:00";
        });
        _ = host;

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            statuses.Add((await http.ClientCredentialsAsync("svc-declared-acl", fixture.BasicSecret, "api.read")).StatusCode);
        }

        var view = await ResponseAssert.StatusAsync(await (await fixture.PlatformAdminAsync()).GetAsync("/admin/v1/clients/svc-declared-acl"), HttpStatusCode.OK);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, (HttpStatusCode)429], statuses);
        Assert.Equal([network.PeerAddress + "/32"], view.GetProperty("allowedIpRanges").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal("00:30:00", view.GetProperty("tokenRateLimit").GetProperty("window").GetString());
    }

    [Theory]
    [InlineData("AllowedIpRanges:0", "10.1.0.0/8", "Oidc:Clients:10:AllowedIpRanges:0")]
    [InlineData("TokenRateLimit:Window", "02:00:00", "Oidc:Clients:10:TokenRateLimit:Window")]
    public void Start_DeclaredAccessPolicyInvalid_RefusesToStartNamingTheKey(string key, string value, string named)
    {
        var host = fixture.StartServer(settings =>
        {
            settings["Oidc:Clients:10:ClientId"] = "svc-bad-acl";
            settings["Oidc:Clients:10:GrantTypes:0"] = "client_credentials";
            settings["Oidc:Clients:10:SecretFile"] = fixture.SecretFile("svc-basic");
            settings["Oidc:Clients:10:TokenRateLimit:Permits"] = "5";
            settings["Oidc:Clients:10:TokenRateLimit:Window"] = "00:01:00";
            settings["Oidc:Clients:10:" + key] = value;
        });

        var failure = Assert.ThrowsAny<Exception>(() => host.Start());

        Assert.Contains(named, failure.ToString(), StringComparison.Ordinal);
    }
}
