using System.Net;
using Identity.Core.Data;
using Identity.Server.Account;
using Identity.Server.Clients;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.IntegrationTests.Hosting;

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

    [Fact]
    public async Task DemoPassword_Always_SatisfiesThePasswordRules()
    {
        var validator = new PasswordValidator<ApplicationUser>();
        var options = Microsoft.Extensions.Options.Options.Create(new IdentityOptions { Password = { RequiredLength = 12 } });
        using var users = new UserManager<ApplicationUser>(new NoStore(), options, new PasswordHasher<ApplicationUser>(),
            [], [validator], new UpperInvariantLookupNormalizer(), new IdentityErrorDescriber(), null!,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<UserManager<ApplicationUser>>.Instance);

        for (var i = 0; i < 2000; i++)
        {
            var password = DemoUserSeeder.NewPassword();
            var result = await validator.ValidateAsync(users, new ApplicationUser(), password);
            Assert.True(result.Succeeded, $"{password}: {string.Join("; ", result.Errors.Select(e => e.Description))}");
        }
    }

    private sealed class NoStore : IUserStore<ApplicationUser>
    {
        public void Dispose()
        {
        }

        public Task<IdentityResult> CreateAsync(ApplicationUser user, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<IdentityResult> DeleteAsync(ApplicationUser user, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<ApplicationUser?> FindByIdAsync(string userId, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<ApplicationUser?> FindByNameAsync(string normalizedUserName, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<string?> GetNormalizedUserNameAsync(ApplicationUser user, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<string> GetUserIdAsync(ApplicationUser user, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<string?> GetUserNameAsync(ApplicationUser user, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task SetNormalizedUserNameAsync(ApplicationUser user, string? normalizedName, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task SetUserNameAsync(ApplicationUser user, string? userName, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<IdentityResult> UpdateAsync(ApplicationUser user, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    private static async Task<OpenIddictEntityFrameworkCoreApplication> ReadAsync(IdentityServerHost host, string clientId)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Set<OpenIddictEntityFrameworkCoreApplication>()
            .AsNoTracking().SingleAsync(a => a.ClientId == clientId);
    }
}
