using Identity.Core.Audit;
using System.Net;
using System.Text.Json;
using Identity.Core.Data;
using Identity.Server.Audit;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// The admin API for accounts and users: role boundaries, validation, optimistic concurrency and the audit trail,
/// on each database provider. Each test builds its own two accounts (A and B) with an admin and a member.
/// </summary>
public abstract class AccountsAndUsersApiTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>, IAsyncLifetime
    where TDatabase : TestDatabase, new()
{
    private const string Password = "Correct-Horse-Battery-9";
    private HttpClient _platform = null!;
    private string _unique = "";

    protected Guid AccountA { get; private set; }

    protected Guid AccountB { get; private set; }

    protected string AdminA { get; private set; } = "";

    protected string MemberA { get; private set; } = "";

    protected string UserB { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _unique = Guid.NewGuid().ToString("n")[..8];
        _platform = await fixture.PlatformAdminAsync();
        await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Put, "/admin/v1/regions/eu", """{"displayName":"Europe"}"""), HttpStatusCode.OK);
        await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Put, "/admin/v1/regions/us", """{"displayName":"United States"}"""), HttpStatusCode.OK);
        AccountA = await CreateAccountAsync("A", "eu");
        AccountB = await CreateAccountAsync("B", "us");
        AdminA = await CreateUserAsync(_platform, AccountA, Email("admin-a"), "admin");
        MemberA = await CreateUserAsync(_platform, AccountA, Email("member-a"), "member");
        UserB = await CreateUserAsync(_platform, AccountB, Email("user-b"), "admin");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private string Email(string who) => $"{who}-{_unique}@example.test";

    private async Task<Guid> CreateAccountAsync(string name, string region)
    {
        var body = await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            $$"""{"name":"Account {{name}} {{_unique}}","regions":["{{region}}"]}"""), HttpStatusCode.Created);
        return body.GetProperty("id").GetGuid();
    }

    private static async Task<string> CreateUserAsync(HttpClient client, Guid account, string email, string role)
    {
        var body = await ResponseAssert.StatusAsync(await client.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{email}}","displayName":"{{role}}","role":"{{role}}","password":"{{Password}}"}"""), HttpStatusCode.Created);
        return body.GetProperty("user").GetProperty("id").GetString()!;
    }

    private async Task<(int Users, int Accounts, int Audit, int Outbox)> CountsAsync()
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return (await db.Users.CountAsync(), await db.Accounts.CountAsync(), await db.AuditEntries.CountAsync(), await db.Outbox.CountAsync());
    }

    private async Task<List<string>> AuditTypesAsync(string subjectId)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.AuditEntries.Where(e => e.SubjectId == subjectId).OrderBy(e => e.Id).Select(e => e.EventType).ToListAsync();
    }

    private IEnumerable<(HttpMethod Method, string Url, string? Body)> RoutesNaming(Guid account, string user) =>
    [
        (HttpMethod.Get, $"/admin/v1/accounts/{account}", null),
        (HttpMethod.Patch, $"/admin/v1/accounts/{account}", """{"name":"x"}"""),
        (HttpMethod.Post, $"/admin/v1/accounts/{account}/suspend", null),
        (HttpMethod.Put, $"/admin/v1/accounts/{account}/regions/eu", null),
        (HttpMethod.Delete, $"/admin/v1/accounts/{account}/regions/us", null),
        (HttpMethod.Get, $"/admin/v1/accounts/{account}/users", null),
        (HttpMethod.Post, $"/admin/v1/accounts/{account}/users", $$"""{"email":"new-{{_unique}}@example.test","role":"member"}"""),
        (HttpMethod.Get, $"/admin/v1/accounts/{account}/users/{user}", null),
        (HttpMethod.Patch, $"/admin/v1/accounts/{account}/users/{user}", """{"displayName":"x"}"""),
        (HttpMethod.Post, $"/admin/v1/accounts/{account}/users/{user}/disable", null),
        (HttpMethod.Post, $"/admin/v1/accounts/{account}/users/{user}/enable", null),
        (HttpMethod.Post, $"/admin/v1/accounts/{account}/users/{user}/reset-mfa", null),
        (HttpMethod.Post, $"/admin/v1/accounts/{account}/users/{user}/revoke-sessions", null),
        (HttpMethod.Delete, $"/admin/v1/accounts/{account}/users/{user}", null),
        (HttpMethod.Delete, $"/admin/v1/accounts/{account}", null),
    ];

    [Fact]
    public async Task AdminRoutes_WithoutToken_Unauthorized()
    {
        foreach (var (method, url, body) in RoutesNaming(AccountA, AdminA))
        {
            var response = await fixture.Client.SendJsonAsync(method, url, body, ifMatch: "\"1\"");
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {url}: {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task AdminRoutes_AsMember_Forbidden()
    {
        var member = await fixture.AsUserAsync(Email("member-a"), Password);

        foreach (var (method, url, body) in RoutesNaming(AccountA, AdminA).Append((HttpMethod.Get, "/admin/v1/accounts", null)))
        {
            var response = await member.SendJsonAsync(method, url, body, ifMatch: "\"1\"");
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{method} {url}: {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task AdminRoutes_AccountAdminNamingAnotherAccount_NotFoundAndNothingChanged()
    {
        var adminA = await fixture.AsUserAsync(Email("admin-a"), Password);
        var before = await CountsAsync();

        foreach (var (method, url, body) in RoutesNaming(AccountB, UserB))
        {
            var response = await adminA.SendJsonAsync(method, url, body, ifMatch: "\"1\"");
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {url}: {(int)response.StatusCode} {text}");
            Assert.DoesNotContain(Email("user-b"), text, StringComparison.Ordinal);
        }

        Assert.Equal(before, await CountsAsync());
        var list = await (await adminA.GetAsync("/admin/v1/accounts")).JsonAsync();
        Assert.Equal([AccountA], list.GetProperty("items").EnumerateArray().Select(a => a.GetProperty("id").GetGuid()));
    }

    [Fact]
    public async Task AccountAdmin_OwnAccount_ManagesUsersButNotPlatformRoutes()
    {
        var adminA = await fixture.AsUserAsync(Email("admin-a"), Password);

        var created = await CreateUserAsync(adminA, AccountA, Email("hired"), "member");
        var suspend = await adminA.PostAsync($"/admin/v1/accounts/{AccountA}/suspend", null);
        var newAccount = await adminA.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Mine"}""");

        Assert.False(string.IsNullOrEmpty(created));
        Assert.Equal(HttpStatusCode.Forbidden, suspend.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, newAccount.StatusCode);
    }

    public static TheoryData<string, string, string, string?> InvalidRequests => new()
    {
        { "users", "email", """{"email":"not-an-email","role":"member"}""", null },
        { "users", "email", """{"email":"DUPLICATE","role":"member"}""", null },
        { "users", "role", """{"email":"fresh@example.test","role":"superuser"}""", null },
        { "users", "displayName", $$"""{"email":"fresh@example.test","role":"member","displayName":"{{new string('x', 201)}}"}""", null },
        { "users", "password", """{"email":"fresh@example.test","role":"member","password":"short"}""", null },
        { "users", "email", """{"email":12,"role":"member"}""", null },
        { "users", "body", """{"email":"fresh@example.test",""", null },
        { "users", "body", """{"email":"fresh@example.test","role":"member"}""", "text/plain" },
        { "users", "isAdmin", """{"email":"fresh@example.test","role":"member","isAdmin":true}""", null },
        { "accounts", "regions", """{"name":"X","regions":["mars"]}""", null },
        { "accounts", "regions", """{"name":"X","regions":[null]}""", null },
        { "accounts", "regions", """{"name":"X","regions":["eu",null,""]}""", null },
        { "accounts", "name", $$"""{"name":"{{new string('n', 201)}}"}""", null },
        { "accounts", "name", """{"regions":[]}""", null },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task Create_InvalidBody_ProblemNamingTheFieldAndNothingWritten(string collection, string field, string json, string? contentType)
    {
        var before = await CountsAsync();
        var url = collection == "users" ? $"/admin/v1/accounts/{AccountA}/users" : "/admin/v1/accounts";
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new StringContent(json.Replace("DUPLICATE", Email("user-b"), StringComparison.Ordinal),
                System.Text.Encoding.UTF8, contentType ?? "application/json"),
        };

        var response = await _platform.SendAsync(request);

        var problem = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"errors should name '{field}': {problem}");
        Assert.Equal(before, await CountsAsync());
    }

    [Fact]
    public async Task Update_TwoWritersWithSameETag_OneSucceedsOneGets412()
    {
        var url = $"/admin/v1/accounts/{AccountA}/users/{MemberA}";
        var etag = (await _platform.GetAsync(url)).Headers.ETag!.Tag;

        var first = await _platform.SendJsonAsync(HttpMethod.Patch, url, """{"displayName":"First"}""", etag);
        var second = await _platform.SendJsonAsync(HttpMethod.Patch, url, """{"displayName":"Second"}""", etag);
        var missing = await _platform.SendJsonAsync(HttpMethod.Patch, url, """{"displayName":"Third"}""");

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, second.StatusCode);
        Assert.Equal((HttpStatusCode)428, missing.StatusCode);
        var current = await (await _platform.GetAsync(url)).JsonAsync();
        Assert.Equal("First", current.GetProperty("displayName").GetString());
        Assert.NotEqual(etag, (await _platform.GetAsync(url)).Headers.ETag!.Tag);
    }

    [Fact]
    public async Task Account_TwoWritersWithSameETag_OneSucceedsOneGets412()
    {
        var url = $"/admin/v1/accounts/{AccountA}";
        var etag = (await _platform.GetAsync(url)).Headers.ETag!.Tag;

        var first = await _platform.SendJsonAsync(HttpMethod.Patch, url, """{"name":"Renamed once"}""", etag);
        var second = await _platform.SendJsonAsync(HttpMethod.Patch, url, """{"name":"Renamed twice"}""", etag);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, second.StatusCode);
    }

    [Fact]
    public async Task RevokeSessions_TokensOfTheUsersCodeFlow_NoLongerActiveAtIdentity()
    {
        // Arrange: the member signs in at a web app; its access token has no token entry, only the code's authorization.
        var redirect = ServerFixture<TDatabase>.EuApp + "/signin-oidc";
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(fixture.Server).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", redirect, challenge, ("scope", "openid profile")), Email("member-a"), Password);
        var tokens = await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(callback, verifier, redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveAsync(accessToken));

        // Act
        var revoked = await _platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{AccountA}/users/{MemberA}/revoke-sessions", null);

        // Assert
        Assert.True(revoked.IsSuccessStatusCode, $"{(int)revoked.StatusCode}");
        Assert.False(await IsActiveAsync(accessToken));

        async Task<bool> IsActiveAsync(string token) =>
            (await (await fixture.Client.PostFormAsync("/connect/introspect", [new("token", token)], ("web-eu", fixture.WebSecret))).JsonAsync())
                .GetProperty("active").GetBoolean();
    }

    [Fact]
    public async Task MutatingRoutes_EachLeavesExactlyOneAuditRecord()
    {
        var user = $"/admin/v1/accounts/{AccountA}/users/{MemberA}";
        async Task Step(HttpMethod method, string url, string? body, string expectedType, string subject, bool ifMatch = false)
        {
            var before = (await CountsAsync()).Audit;
            var etag = ifMatch ? (await _platform.GetAsync(url)).Headers.ETag!.Tag : null;
            var response = await _platform.SendJsonAsync(method, url, body, etag);
            Assert.True(response.IsSuccessStatusCode, $"{method} {url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.Equal(before + 1, (await CountsAsync()).Audit);
            Assert.Equal(expectedType, (await AuditTypesAsync(subject))[^1]);
        }

        await Step(HttpMethod.Patch, user, """{"displayName":"Renamed"}""", "user.updated", MemberA, ifMatch: true);
        await Step(HttpMethod.Post, user + "/disable", null, "user.disabled", MemberA);
        await Step(HttpMethod.Post, user + "/enable", null, "user.enabled", MemberA);
        await Step(HttpMethod.Post, user + "/reset-mfa", null, "user.mfa_reset", MemberA);
        await Step(HttpMethod.Post, user + "/revoke-sessions", null, "user.sessions_revoked", MemberA);
        await Step(HttpMethod.Patch, $"/admin/v1/accounts/{AccountA}", """{"name":"Audited"}""", "account.updated", AccountA.ToString(), ifMatch: true);
        await Step(HttpMethod.Put, $"/admin/v1/accounts/{AccountA}/regions/us", null, "account.region_enabled", AccountA.ToString());
        await Step(HttpMethod.Delete, $"/admin/v1/accounts/{AccountA}/regions/us", null, "account.region_disabled", AccountA.ToString());
        await Step(HttpMethod.Post, $"/admin/v1/accounts/{AccountA}/suspend", null, "account.suspended", AccountA.ToString());
        await Step(HttpMethod.Post, $"/admin/v1/accounts/{AccountA}/activate", null, "account.activated", AccountA.ToString());
        await Step(HttpMethod.Delete, user, null, "user.deleted", MemberA);

        var entries = await AuditTypesAsync(MemberA);
        Assert.Equal(["user.created", "user.updated", "user.disabled", "user.enabled", "user.mfa_reset", "user.sessions_revoked", "user.deleted"], entries);
    }

    [Fact]
    public async Task Audit_NeverHoldsThePassword()
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var details = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().AuditEntries
            .Where(e => e.SubjectId == AdminA).Select(e => e.Details).ToListAsync();

        Assert.NotEmpty(details);
        Assert.All(details, d => Assert.DoesNotContain(Password, d ?? "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Create_AuditFailsAfterTheChange_UserAuditAndOutboxRolledBack()
    {
        await using var failing = fixture.Server.WithWebHostBuilder(builder =>
            builder.ConfigureTestServices(services => services.AddScoped<IAuditTrail, FailingAuditTrail>()));
        var client = failing.CreateClient();
        client.DefaultRequestHeaders.Authorization = _platform.DefaultRequestHeaders.Authorization;
        var before = await CountsAsync();

        var response = await client.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{AccountA}/users",
            $$"""{"email":"{{Email("lost")}}","role":"member","password":"{{Password}}"}""");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.DoesNotContain("FailingAuditTrail", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal); // no stack trace
        Assert.Equal(before, await CountsAsync());
    }

    [Fact]
    public async Task Delete_Twice_NoContentBothTimes()
    {
        var url = $"/admin/v1/accounts/{AccountA}/users/{MemberA}";

        Assert.Equal(HttpStatusCode.NoContent, (await _platform.DeleteAsync(url)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _platform.DeleteAsync(url)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _platform.GetAsync(url)).StatusCode);
    }

    [Fact]
    public async Task DisabledUser_CannotSignIn_AndSuspendedAccountNeither()
    {
        await _platform.PostAsync($"/admin/v1/accounts/{AccountA}/users/{MemberA}/disable", null);
        var browser = new BrowserSession(fixture.Server);
        var refused = await browser.SignInAsync("/Account/Login", Email("member-a"), Password);
        Assert.Contains("Invalid email or password.", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        await _platform.PostAsync($"/admin/v1/accounts/{AccountA}/suspend", null);
        var suspended = await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", Email("admin-a"), Password);
        Assert.Contains("Invalid email or password.", await suspended.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DisabledUser_WithLiveSsoSession_IsAskedToSignInAgainAtTheNextAuthorization()
    {
        var browser = new BrowserSession(fixture.Server);
        var redirect = ServerFixture<TDatabase>.EuApp + "/signin-oidc";
        await browser.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", redirect, BrowserSession.Pkce().Challenge), Email("member-a"), Password);

        await _platform.PostAsync($"/admin/v1/accounts/{AccountA}/users/{MemberA}/disable", null);
        var next = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", redirect, BrowserSession.Pkce().Challenge));

        Assert.Contains("/Account/Login", BrowserSession.Location(next).OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Users_ListWithFilterAndCursor_PagesThroughEveryUserOnce()
    {
        for (var i = 0; i < 5; i++)
        {
            await CreateUserAsync(_platform, AccountA, Email($"paged{i}"), "member");
        }

        var seen = new List<string>();
        string? next = null;
        do
        {
            var page = await ResponseAssert.StatusAsync(await _platform.GetAsync(
                $"/admin/v1/accounts/{AccountA}/users?email=paged&limit=2" + (next is null ? "" : "&after=" + next)), HttpStatusCode.OK);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(u => u.GetProperty("email").GetString()!));
            next = page.GetProperty("next").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next").GetString();
        }
        while (next is not null);

        Assert.Equal(5, seen.Count);
        Assert.Equal(5, seen.Distinct().Count());
        Assert.All(seen, e => Assert.StartsWith("paged", e, StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.BadRequest, (await _platform.GetAsync($"/admin/v1/accounts/{AccountA}/users?after=%%%")).StatusCode);
    }

    [Fact]
    public async Task OpenApiDocument_IsValidAndListsEveryAdminRoute()
    {
        var document = await ResponseAssert.StatusAsync(await fixture.Client.GetAsync("/openapi/v1.json"), HttpStatusCode.OK);
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var documented = document.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(m => $"{m.Name.ToUpperInvariant()} {p.Name}"))
            .ToHashSet(StringComparer.Ordinal);

        var routes = fixture.Server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/admin/v1", StringComparison.Ordinal) == true)
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m =>
                $"{m} {System.Text.RegularExpressions.Regex.Replace(e.RoutePattern.RawText!.TrimEnd('/'), ":[a-z]+}", "}")}"))
            .ToList();

        Assert.NotEmpty(routes);
        Assert.All(routes, route => Assert.Contains(route, documented));
        var createUser = document.GetProperty("paths").GetProperty("/admin/v1/accounts/{accountId}/users").GetProperty("post");
        Assert.True(createUser.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
    }

    private sealed class FailingAuditTrail : IAuditTrail
    {
        public void Record(Actor actor, string eventType, string? subjectType, string? subjectId, Guid? accountId, object? details = null) =>
            throw new InvalidOperationException("The audit store is unavailable.");
    }
}

public sealed class SqliteAccountsAndUsersApiTests(ServerFixture<SqliteTestDatabase> fixture)
    : AccountsAndUsersApiTests<SqliteTestDatabase>(fixture);

public sealed class PostgresAccountsAndUsersApiTests(ServerFixture<PostgresTestDatabase> fixture)
    : AccountsAndUsersApiTests<PostgresTestDatabase>(fixture);
