using System.Net;
using Identity.Core.Data;
using Identity.Server.Clients;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.IntegrationTests.Clients;

/// <summary>
/// Several server processes on one database behave as one authority: shared keys, shared clients, and
/// changes to a client honoured by every replica within seconds despite the client cache.
/// </summary>
public abstract class ReplicaTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private static readonly TimeSpan PropagationLimit = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task TwoReplicas_TokenIssuedByOne_IsActiveAtTheOtherAndJwksAreEqual()
    {
        await using var replica = fixture.StartServer();
        var other = replica.Start();

        var token = await IssueAsync(fixture.Client, "svc-basic", fixture.BasicSecret);
        var introspection = await ResponseAssert.StatusAsync(
            await other.PostFormAsync("/connect/introspect", [new("token", token)], ("svc-basic", fixture.BasicSecret)), HttpStatusCode.OK);

        Assert.True(introspection.GetProperty("active").GetBoolean());
        Assert.Equal(await fixture.Client.GetStringAsync("/.well-known/jwks"), await other.GetStringAsync("/.well-known/jwks"));
        Assert.True((await other.ValidateAccessTokenAsync(token, ServerFixture<TDatabase>.Api)).IsValid);
    }

    [Fact]
    public async Task Restart_TokenIssuedBefore_StillValidatesAfter()
    {
        string token, jwksBefore;
        await using (var first = fixture.StartServer())
        {
            var client = first.Start();
            token = await IssueAsync(client, "svc-basic", fixture.BasicSecret);
            jwksBefore = await client.GetStringAsync("/.well-known/jwks");
        }

        await using var restarted = fixture.StartServer();
        var after = restarted.Start();

        Assert.Equal(jwksBefore, await after.GetStringAsync("/.well-known/jwks"));
        var result = await after.ValidateAccessTokenAsync(token, ServerFixture<TDatabase>.Api);
        Assert.True(result.IsValid, result.Exception?.Message);
        var introspection = await (await after.PostFormAsync("/connect/introspect", [new("token", token)], ("svc-basic", fixture.BasicSecret))).JsonAsync();
        Assert.True(introspection.GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task SecretRotatedOnOneReplica_OldSecretRefusedByTheOtherWithinSeconds()
    {
        var clientId = "svc-rotate-" + Guid.NewGuid().ToString("n")[..6];
        var oldSecret = ClientSecretHasher.GenerateSecret();
        await CreateClientAsync(clientId, oldSecret);
        await using var replica = fixture.StartServer();
        var other = replica.Start();
        await IssueAsync(other, clientId, oldSecret); // the other replica now caches the client

        var newSecret = ClientSecretHasher.GenerateSecret();
        await WithApplicationAsync(clientId, (manager, application) => manager.UpdateAsync(application, newSecret).AsTask());

        var refusedAfter = await TimeUntilRefusedAsync(other, clientId, oldSecret);
        Assert.True(refusedAfter < PropagationLimit, $"old secret still accepted after {refusedAfter}");
        await IssueAsync(other, clientId, newSecret);
    }

    [Fact]
    public async Task ClientDeletedOnOneReplica_RefusedByTheOtherWithinSeconds()
    {
        var clientId = "svc-delete-" + Guid.NewGuid().ToString("n")[..6];
        var secret = ClientSecretHasher.GenerateSecret();
        await CreateClientAsync(clientId, secret);
        await using var replica = fixture.StartServer();
        var other = replica.Start();
        await IssueAsync(other, clientId, secret);

        await WithApplicationAsync(clientId, (manager, application) => manager.DeleteAsync(application).AsTask());

        var refusedAfter = await TimeUntilRefusedAsync(other, clientId, secret);
        Assert.True(refusedAfter < PropagationLimit, $"deleted client still accepted after {refusedAfter}");
    }

    [Fact]
    public async Task Restart_SameConfiguration_ChangesNothing_ChangedEntry_IsUpdated()
    {
        var before = await ReadClientAsync("svc-basic");

        await using (var same = fixture.StartServer())
        {
            same.Start();
        }

        var unchanged = await ReadClientAsync("svc-basic");
        Assert.Equal(before.ConcurrencyToken, unchanged.ConcurrencyToken);
        Assert.Equal(before.ClientSecret, unchanged.ClientSecret);

        await using (var changed = fixture.StartServer(s => s["Oidc:Clients:0:DisplayName"] = "Renamed service"))
        {
            changed.Start();
        }

        var updated = await ReadClientAsync("svc-basic");
        Assert.Equal("Renamed service", updated.DisplayName);
        Assert.NotEqual(before.ConcurrencyToken, updated.ConcurrencyToken);
        Assert.Equal(before.ClientSecret, updated.ClientSecret); // same secret: hash kept, not re-hashed
        await IssueAsync(fixture.Client, "svc-basic", fixture.BasicSecret);
    }

    private async Task<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication> ReadClientAsync(string clientId)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        return await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>()
            .AsNoTracking().SingleAsync(a => a.ClientId == clientId);
    }

    private async Task CreateClientAsync(string clientId, string secret)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var manager = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        await manager.CreateAsync(ClientSeeder.ToDescriptor(new ClientDefinition
        {
            ClientId = clientId,
            GrantTypes = [GrantTypes.ClientCredentials],
            Scopes = ["api.read"],
        }, secret));
    }

    private async Task WithApplicationAsync(string clientId, Func<IOpenIddictApplicationManager, object, Task> action)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var manager = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        var application = await manager.FindByClientIdAsync(clientId) ?? throw new InvalidOperationException(clientId);
        await action(manager, application);
    }

    /// <summary>When the first refused request was made (not when its answer came: on a slow machine that is later).</summary>
    private static async Task<TimeSpan> TimeUntilRefusedAsync(HttpClient client, string clientId, string secret)
    {
        var started = TimeProvider.System.GetTimestamp();
        while (TimeProvider.System.GetElapsedTime(started) < PropagationLimit * 2)
        {
            var madeAfter = TimeProvider.System.GetElapsedTime(started);
            var response = await client.ClientCredentialsAsync(clientId, secret, "api.read");
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                return madeAfter;
            }

            await Task.Delay(100);
        }

        return TimeSpan.MaxValue;
    }

    private static async Task<string> IssueAsync(HttpClient client, string clientId, string secret)
    {
        var body = await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync(clientId, secret, "api.read"), HttpStatusCode.OK);
        return body.GetProperty("access_token").GetString()!;
    }
}

public sealed class SqliteReplicaTests(ServerFixture<SqliteTestDatabase> fixture) : ReplicaTests<SqliteTestDatabase>(fixture);

public sealed class PostgresReplicaTests(ServerFixture<PostgresTestDatabase> fixture) : ReplicaTests<PostgresTestDatabase>(fixture);
