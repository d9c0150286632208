using System.Net;
using Identity.Core.Data;
using Identity.Server.Account;
using Identity.Server.Clients;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.IntegrationTests;

/// <summary>The embedded default: nothing declared, SQLite, first run seeds demo clients and a demo user once.</summary>
public sealed class EmbeddedDefaultTests
{
    [Fact]
    public async Task FirstRun_NothingDeclared_SeedsDemoClientsAndUserOnce()
    {
        var database = new SqliteTestDatabase();
        await database.InitializeAsync();
        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:ConnectionString"] = database.ConnectionString,
            ["Oidc:Issuer"] = "http://localhost/",
            ["Oidc:AllowInsecureHttp"] = "true",
        };
        try
        {
            string? tokenBefore;
            await using (var first = new IdentityServerHost(settings))
            {
                var client = first.Start();
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/.well-known/openid-configuration")).StatusCode);
                tokenBefore = (await ReadAsync(first, ClientSeeder.DemoClientId)).ConcurrencyToken;
                await using var scope = first.Services.CreateAsyncScope();
                Assert.NotNull(await scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>().FindByEmailAsync(DemoUserSeeder.DemoEmail));
                Assert.NotNull(await ReadAsync(first, "region-eu"));
            }

            await using var second = new IdentityServerHost(settings);
            second.Start();
            var after = await ReadAsync(second, ClientSeeder.DemoClientId);
            Assert.Equal(tokenBefore, after.ConcurrencyToken); // not re-created, secret not replaced
            Assert.StartsWith("sha256:", after.ClientSecret, StringComparison.Ordinal); // only a hash is stored
        }
        finally
        {
            await database.DisposeAsync();
        }
    }

    private static async Task<OpenIddictEntityFrameworkCoreApplication> ReadAsync(IdentityServerHost host, string clientId)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Set<OpenIddictEntityFrameworkCoreApplication>()
            .AsNoTracking().SingleAsync(a => a.ClientId == clientId);
    }
}
