using System.Net;
using System.Text.Json;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>Clients through the admin API (secret shown once, rotation honoured at the token endpoint) and the audit query.</summary>
public abstract class ClientsAndAuditApiTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private static string NewId() => "svc-" + Guid.NewGuid().ToString("n")[..10];

    private async Task<(HttpClient Platform, string ClientId, string Secret)> CreateServiceAsync()
    {
        var platform = await fixture.PlatformAdminAsync();
        await platform.SendJsonAsync(HttpMethod.Put, "/admin/v1/regions/eu", """{"displayName":"Europe"}""");
        var clientId = NewId();
        var created = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients",
            $$"""{"clientId":"{{clientId}}","displayName":"EU orders","grantTypes":["client_credentials"],"scopes":["api.read"],"region":"eu","accessTokenLifetime":"00:05:00"}"""),
            HttpStatusCode.Created);
        Assert.Equal("eu", created.GetProperty("client").GetProperty("region").GetString());
        return (platform, clientId, created.GetProperty("clientSecret").GetString()!);
    }

    [Fact]
    public async Task CreateClient_SecretShownOnce_WorksAtTheTokenEndpoint_AndIsNeverStoredOrAudited()
    {
        var (platform, clientId, secret) = await CreateServiceAsync();

        var token = await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(clientId, secret, "api.read"), HttpStatusCode.OK);
        var read = await (await platform.GetAsync($"/admin/v1/clients/{clientId}")).Content.ReadAsStringAsync();

        Assert.Equal(300, token.GetProperty("expires_in").GetInt32(), 1.0);
        Assert.DoesNotContain(secret, read, StringComparison.Ordinal);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var details = await db.AuditEntries.Where(e => e.SubjectId == clientId).Select(e => e.Details ?? "").ToListAsync();
        Assert.NotEmpty(details);
        Assert.All(details, d => Assert.DoesNotContain(secret, d, StringComparison.Ordinal));
        var stored = await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>().Where(a => a.ClientId == clientId).Select(a => a.ClientSecret).SingleAsync();
        Assert.NotEqual(secret, stored);
    }

    [Fact]
    public async Task RotateSecret_OldRefusedWithinSeconds_NewWorks_Audited()
    {
        var (platform, clientId, oldSecret) = await CreateServiceAsync();
        await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(clientId, oldSecret, "api.read"), HttpStatusCode.OK);
        var etag = (await platform.GetAsync($"/admin/v1/clients/{clientId}")).Headers.ETag!.Tag;

        var rotated = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/clients/{clientId}/rotate-secret", null, etag), HttpStatusCode.OK);
        var newSecret = rotated.GetProperty("clientSecret").GetString()!;
        var stale = await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/clients/{clientId}/rotate-secret", null, etag);

        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        var started = DateTime.UtcNow;
        while (true)
        {
            // Timed from when the request was made: on a slow machine its answer may come seconds later.
            var madeAfter = DateTime.UtcNow - started;
            if ((await fixture.Client.ClientCredentialsAsync(clientId, oldSecret, "api.read")).StatusCode == HttpStatusCode.Unauthorized)
            {
                break;
            }

            Assert.True(madeAfter < TimeSpan.FromSeconds(5), $"the old secret still works in a request made {madeAfter} after the rotation");
            await Task.Delay(100);
        }

        await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(clientId, newSecret, "api.read"), HttpStatusCode.OK);
        var audit = await ResponseAssert.StatusAsync(await platform.GetAsync($"/admin/v1/audit?subject={clientId}&type=client.secret_rotated"), HttpStatusCode.OK);
        var entry = Assert.Single(audit.GetProperty("items").EnumerateArray());
        Assert.DoesNotContain(newSecret, entry.ToString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, string> InvalidClients => new()
    {
        { "redirectUris[0]", """{"grantTypes":["authorization_code"],"scopes":["openid"],"redirectUris":["https://app.example/cb#fragment"]}""" },
        { "redirectUris[0]", """{"grantTypes":["authorization_code"],"scopes":["openid"],"redirectUris":["/relative"]}""" },
        { "region", """{"grantTypes":["client_credentials"],"scopes":["api.read"],"region":"mars"}""" },
        { "clientId", """{"clientId":"svc-basic","grantTypes":["client_credentials"],"scopes":["api.read"]}""" },
        { "clientId", """{"clientId":"a b","grantTypes":["client_credentials"]}""" },
        { "grantTypes", """{"grantTypes":["password"]}""" },
        { "authenticationMethod", """{"authenticationMethod":"none","grantTypes":["client_credentials"]}""" },
        { "jwks", """{"authenticationMethod":"private_key_jwt","grantTypes":["client_credentials"]}""" },
        { "grantTypes", """{"grantTypes":"#""" },
        // This server has no mTLS endpoint (Mtls:Port): no client may be registered for a method it cannot serve.
        { "authenticationMethod", """{"authenticationMethod":"tls_client_auth","tlsClientAuthSubjectDn":"CN=orders","grantTypes":["client_credentials"]}""" },
        { "authenticationMethod", """{"authenticationMethod":"self_signed_tls_client_auth","grantTypes":["client_credentials"],"jwks":{"keys":[]}}""" },
        // RFC 9700 §4.14.2: no refresh-token reuse leeway for a public client; at most a minute for a confidential one.
        { "refreshTokenReuseLeeway", """{"authenticationMethod":"none","grantTypes":["authorization_code","refresh_token"],"scopes":["openid"],"redirectUris":["https://spa.test/cb"],"refreshTokenReuseLeeway":"00:00:05"}""" },
        { "refreshTokenReuseLeeway", """{"grantTypes":["authorization_code","refresh_token"],"scopes":["openid"],"redirectUris":["https://web.test/cb"],"refreshTokenReuseLeeway":"00:05:00"}""" },
    };

    // A confidential web client that retries its refreshes may be given a reuse leeway (none by default).
    [Fact]
    public async Task CreateClient_ConfidentialWithRefreshTokenReuseLeeway_ShowsItAndOthersHaveNone()
    {
        var platform = await fixture.PlatformAdminAsync();
        var clientId = NewId();

        var created = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients",
            $$"""{"clientId":"{{clientId}}","grantTypes":["authorization_code","refresh_token"],"scopes":["openid","offline_access"],"redirectUris":["https://web.test/cb"],"refreshTokenReuseLeeway":"00:00:10"}"""),
            HttpStatusCode.Created);
        var other = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients",
            """{"grantTypes":["authorization_code","refresh_token"],"scopes":["openid"],"redirectUris":["https://web.test/cb"]}"""),
            HttpStatusCode.Created);

        Assert.Equal("00:00:10", created.GetProperty("client").GetProperty("refreshTokenReuseLeeway").GetString());
        Assert.Equal(JsonValueKind.Null, other.GetProperty("client").GetProperty("refreshTokenReuseLeeway").ValueKind);
    }

    [Theory]
    [MemberData(nameof(InvalidClients))]
    public async Task CreateClient_Invalid_ProblemNamingTheFieldAndNothingWritten(string field, string json)
    {
        var platform = await fixture.PlatformAdminAsync();
        var before = await CountAsync();

        var response = await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients", json);

        var problem = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.Equal(before, await CountAsync());
    }

    [Fact]
    public async Task DeleteClient_Twice_NoContent_AndItsTokensStop()
    {
        var (platform, clientId, secret) = await CreateServiceAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await platform.DeleteAsync($"/admin/v1/clients/{clientId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await platform.DeleteAsync($"/admin/v1/clients/{clientId}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client.ClientCredentialsAsync(clientId, secret, "api.read")).StatusCode);
    }

    [Theory]
    [InlineData("svc-basic", "declared in configuration")]
    [InlineData("identity-console", "admin console's own client")]
    public async Task DeleteClient_DeclaredOrTheConsolesOwn_ConflictProblem_ClientKeptAndNothingAudited(string clientId, string reason)
    {
        var platform = await fixture.PlatformAdminAsync();

        var response = await platform.DeleteAsync($"/admin/v1/clients/{clientId}");

        // RFC 9457 problem, 409: the client is registered again at every start, so it is removed from configuration.
        var problem = await ResponseAssert.StatusAsync(response, HttpStatusCode.Conflict);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(reason, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ResponseAssert.StatusAsync(await platform.GetAsync($"/admin/v1/clients/{clientId}"), HttpStatusCode.OK);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        Assert.False(await db.AuditEntries.AnyAsync(e => e.SubjectId == clientId && e.EventType == "client.deleted"));
        if (clientId == "svc-basic")
        {
            await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(clientId, fixture.BasicSecret, "api.read"), HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task ReplaceClient_WithIfMatch_UpdatesAndKeepsTheSecret()
    {
        var (platform, clientId, secret) = await CreateServiceAsync();
        var etag = (await platform.GetAsync($"/admin/v1/clients/{clientId}")).Headers.ETag!.Tag;

        var replaced = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/clients/{clientId}",
            """{"displayName":"Renamed","grantTypes":["client_credentials"],"scopes":["api.read","api.write"]}""", etag), HttpStatusCode.OK);
        var stale = await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/clients/{clientId}", """{"grantTypes":["client_credentials"]}""", etag);

        Assert.Equal("Renamed", replaced.GetProperty("displayName").GetString());
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        await ResponseAssert.StatusAsync(await fixture.Client.ClientCredentialsAsync(clientId, secret, "api.write"), HttpStatusCode.OK);
    }

    [Fact]
    public async Task ClientRoutesAndAudit_AccountAdmin_ForbiddenOrOwnAccountOnly()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Audited Co"}"""),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var email = $"aa-{Guid.NewGuid():n}@example.test";
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{email}}","role":"admin","password":"{{fixture.UserPassword}}"}"""), HttpStatusCode.Created);
        await CreateServiceAsync(); // an entry that belongs to no account
        var accountAdmin = await fixture.AsUserAsync(email, fixture.UserPassword);

        Assert.Equal(HttpStatusCode.Forbidden, (await accountAdmin.GetAsync("/admin/v1/clients")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await accountAdmin.SendJsonAsync(HttpMethod.Post, "/admin/v1/clients", """{"grantTypes":["client_credentials"]}""")).StatusCode);
        var audit = await ResponseAssert.StatusAsync(await accountAdmin.GetAsync("/admin/v1/audit?limit=200"), HttpStatusCode.OK);
        var entries = audit.GetProperty("items").EnumerateArray().ToList();
        Assert.NotEmpty(entries);
        Assert.All(entries, e => Assert.Equal(account, e.GetProperty("accountId").GetGuid()));
    }

    [Theory]
    [InlineData("from=yesterday", "from")]
    [InlineData("to=2026-13-45", "to")]
    [InlineData("limit=0", "limit")]
    [InlineData("after=%%", "after")]
    public async Task AuditQuery_BadParameter_ProblemNamingIt(string query, string field)
    {
        var platform = await fixture.PlatformAdminAsync();

        var problem = await ResponseAssert.StatusAsync(await platform.GetAsync("/admin/v1/audit?" + query), HttpStatusCode.BadRequest);

        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task AuditQuery_TimeRangeAndCursor_PagesNewestFirstWithoutGaps()
    {
        var platform = await fixture.PlatformAdminAsync();
        var since = DateTimeOffset.UtcNow.AddSeconds(-1).ToString("O");
        for (var i = 0; i < 3; i++)
        {
            await CreateServiceAsync();
        }

        var ids = new List<long>();
        string? next = null;
        do
        {
            var page = await ResponseAssert.StatusAsync(await platform.GetAsync(
                $"/admin/v1/audit?type=client.created&from={Uri.EscapeDataString(since)}&limit=2" + (next is null ? "" : "&after=" + next)), HttpStatusCode.OK);
            ids.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetInt64()));
            next = page.GetProperty("next").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next").GetString();
        }
        while (next is not null);

        Assert.True(ids.Count >= 3);
        Assert.Equal(ids.OrderDescending(), ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    private async Task<int> CountAsync()
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>().CountAsync() + await db.AuditEntries.CountAsync();
    }
}

public sealed class SqliteClientsAndAuditApiTests(ServerFixture<SqliteTestDatabase> fixture) : ClientsAndAuditApiTests<SqliteTestDatabase>(fixture);

public sealed class PostgresClientsAndAuditApiTests(ServerFixture<PostgresTestDatabase> fixture) : ClientsAndAuditApiTests<PostgresTestDatabase>(fixture);
