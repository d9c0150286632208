using System.Net;
using Identity.Server.Clients;
using Identity.Server.IntegrationTests.Infrastructure;
using Testcontainers.MsSql;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>The production provider, on a real SQL Server in a container (skipped where no Docker engine answers).</summary>
public sealed class SqlServerTests
{
    [DockerFact]
    public async Task SqlServer_MigrateThenClientCredentials_IssuesVerifiableToken()
    {
        await using var container = new MsSqlBuilder("mcr.microsoft.com/mssql/server:2022-latest").Build();
        await container.StartAsync();
        var secretFile = Path.GetTempFileName();
        var secret = ClientSecretHasher.GenerateSecret();
        await File.WriteAllTextAsync(secretFile, secret);
        try
        {
            var settings = new Dictionary<string, string?>
            {
                ["Database:Provider"] = "SqlServer",
                ["Database:ConnectionString"] = container.GetConnectionString(),
                ["Database:AutoMigrate"] = "true",
                ["Oidc:Issuer"] = "http://localhost/",
                ["Oidc:AllowInsecureHttp"] = "true",
                ["Oidc:Scopes:0:Name"] = "api.read",
                ["Oidc:Scopes:0:Resources:0"] = "https://api.test",
                ["Oidc:Clients:0:ClientId"] = "svc-sql",
                ["Oidc:Clients:0:GrantTypes:0"] = "client_credentials",
                ["Oidc:Clients:0:Scopes:0"] = "api.read",
                ["Oidc:Clients:0:SecretFile"] = secretFile,
            };
            await using var host = new IdentityServerHost(settings);
            var client = host.Start();

            var body = await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync("svc-sql", secret, "api.read"), HttpStatusCode.OK);
            var result = await client.ValidateAccessTokenAsync(body.GetProperty("access_token").GetString()!, "https://api.test");
            Assert.True(result.IsValid, result.Exception?.Message);
        }
        finally
        {
            File.Delete(secretFile);
        }
    }
}
