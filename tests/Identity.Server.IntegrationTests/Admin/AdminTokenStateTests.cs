using System.Net;
using Identity.Server.Clients;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.IntegrationTests.Admin;

/// <summary>
/// An admin token is only as good as what stands behind it, checked at every request: its authorization (revoked
/// sessions), the person (disabled), their account (suspended) and, for a client, the client itself (deleted).
/// </summary>
public abstract class AdminTokenStateTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private async Task<(HttpClient Platform, Guid Account, string AdminId, string MemberId, HttpClient Admin)> ArrangeAsync()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AdminArrange.AccountAsync(platform, "eu");
        var adminEmail = AdminArrange.Email("admin");
        var adminId = await AdminArrange.UserAsync(platform, account, adminEmail, "admin");
        var memberId = await AdminArrange.UserAsync(platform, account, AdminArrange.Email("member"), "member");
        var admin = await fixture.AsUserAsync(adminEmail, AdminArrange.Password);
        await ResponseAssert.StatusAsync(await admin.GetAsync($"/admin/v1/accounts/{account}/users"), HttpStatusCode.OK);
        return (platform, account, adminId, memberId, admin);
    }

    [Fact]
    public async Task AccountAdminToken_AfterRevokeSessions_Unauthorized()
    {
        var (platform, account, adminId, _, admin) = await ArrangeAsync();

        await ResponseAssert.StatusAsync(
            await platform.PostAsync($"/admin/v1/accounts/{account}/users/{adminId}/revoke-sessions", null), HttpStatusCode.OK);
        var list = await admin.GetAsync($"/admin/v1/accounts/{account}/users");

        // RFC 6750 §3.1: a revoked token is an invalid_token, answered 401 like userinfo does.
        Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
    }

    [Fact]
    public async Task AccountAdminToken_AfterTheAdminIsDisabled_Unauthorized()
    {
        var (platform, account, adminId, _, admin) = await ArrangeAsync();

        await ResponseAssert.StatusAsync(await platform.PostAsync($"/admin/v1/accounts/{account}/users/{adminId}/disable", null), HttpStatusCode.OK);
        var list = await admin.GetAsync($"/admin/v1/accounts/{account}/users");

        Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
    }

    [Fact]
    public async Task AccountAdminToken_AfterTheAccountIsSuspended_ListAndPatchForbiddenAndNothingChanged()
    {
        var (platform, account, _, memberId, admin) = await ArrangeAsync();
        var member = $"/admin/v1/accounts/{account}/users/{memberId}";
        var etag = (await platform.GetAsync(member)).Headers.ETag!.Tag;

        await ResponseAssert.StatusAsync(await platform.PostAsync($"/admin/v1/accounts/{account}/suspend", null), HttpStatusCode.OK);
        var list = await admin.GetAsync($"/admin/v1/accounts/{account}/users");
        var patch = await admin.SendJsonAsync(HttpMethod.Patch, member, """{"displayName":"Changed while suspended"}""", etag);

        Assert.Equal(HttpStatusCode.Forbidden, list.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, patch.StatusCode);
        Assert.Equal("application/problem+json", patch.Content.Headers.ContentType?.MediaType);
        var current = await ResponseAssert.StatusAsync(await platform.GetAsync(member), HttpStatusCode.OK);
        Assert.Equal("member", current.GetProperty("displayName").GetString());
    }

    [Fact]
    public async Task AccountAdminToken_AfterTheAccountIsActivatedAgain_Accepted()
    {
        var (platform, account, _, _, admin) = await ArrangeAsync();

        await platform.PostAsync($"/admin/v1/accounts/{account}/suspend", null);
        await platform.PostAsync($"/admin/v1/accounts/{account}/activate", null);

        await ResponseAssert.StatusAsync(await admin.GetAsync($"/admin/v1/accounts/{account}/users"), HttpStatusCode.OK);
    }

    [Fact]
    public async Task PlatformAdminClientToken_AfterTheClientIsDeleted_ForbiddenOnEveryReplica()
    {
        // Arrange: a second platform-admin client, and a replica whose client cache would keep it for minutes.
        var clientId = "ops-" + Guid.NewGuid().ToString("n")[..8];
        var secret = ClientSecretHasher.GenerateSecret();
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().CreateAsync(ClientSeeder.ToDescriptor(
                new ClientDefinition { ClientId = clientId, GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["identity.admin"], PlatformAdmin = true },
                secret));
        }

        await using var replica = fixture.StartServer(s => s["Oidc:ApplicationCacheDuration"] = "00:01:00");
        var other = replica.Start();
        var token = await ResponseAssert.StatusAsync(await other.ClientCredentialsAsync(clientId, secret, "identity.admin"), HttpStatusCode.OK);
        var ops = replica.CreateClient();
        ops.DefaultRequestHeaders.Authorization = new("Bearer", token.GetProperty("access_token").GetString());
        await ResponseAssert.StatusAsync(await ops.GetAsync("/admin/v1/accounts"), HttpStatusCode.OK);

        // Act: another platform admin deletes the client through the first server.
        var platform = await fixture.PlatformAdminAsync();
        await ResponseAssert.StatusAsync(await platform.DeleteAsync($"/admin/v1/clients/{clientId}"), HttpStatusCode.NoContent);
        var after = await ops.GetAsync("/admin/v1/accounts");

        Assert.Equal(HttpStatusCode.Forbidden, after.StatusCode);
    }
}

public sealed class SqliteAdminTokenStateTests(ServerFixture<SqliteTestDatabase> fixture) : AdminTokenStateTests<SqliteTestDatabase>(fixture);

public sealed class PostgresAdminTokenStateTests(ServerFixture<PostgresTestDatabase> fixture) : AdminTokenStateTests<PostgresTestDatabase>(fixture);
