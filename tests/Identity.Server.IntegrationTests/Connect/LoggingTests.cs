using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>Secrets and tokens never reach the logs, on success or failure, even at Debug level.</summary>
public sealed class LoggingTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    [Fact]
    public async Task TokenRequests_SuccessAndFailure_LogNoSecretOrToken()
    {
        var logs = new CapturedLogs();
        await using var host = new IdentityServerHost(fixture.Settings(), logs);
        var client = host.Start();

        var issued = await (await client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read")).JsonAsync();
        var token = issued.GetProperty("access_token").GetString()!;
        await client.PostFormAsync("/connect/token",
            [new("grant_type", "client_credentials"), new("client_id", "svc-basic"), new("client_secret", fixture.BasicSecret + "wrong")]);
        await client.PostFormAsync("/connect/introspect", [new("token", token)], ("svc-basic", fixture.BasicSecret));
        var browser = new BrowserSession(host);
        await browser.SignInAsync("/Account/Login", ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword + "x");

        var all = string.Join("\n", logs.Lines);
        Assert.NotEmpty(logs.Lines);
        Assert.DoesNotContain(fixture.BasicSecret, all, StringComparison.Ordinal);
        Assert.DoesNotContain(token.Split('.')[2], all, StringComparison.Ordinal); // the signature part of the JWT
        Assert.DoesNotContain(fixture.UserPassword, all, StringComparison.Ordinal);
    }
}
