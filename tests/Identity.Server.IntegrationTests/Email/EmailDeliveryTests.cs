using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Users;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Email;

/// <summary>
/// Email as a real part: queued in the database with the change, sent by the worker over SMTP (MailKit) to a real SMTP
/// server in this process, with a login; a mail server that is down delays the email, loses nothing, even across a
/// restart of the authority; the logs never carry a link.
/// </summary>
public sealed class EmailDeliveryTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string PasswordVariable = "IDENTITY_TEST_SMTP_PASSWORD";

    [Fact]
    public async Task Queue_MailServerWithLogin_SentAsTextAndHtmlWithProductNameAndPublicLink()
    {
        Environment.SetEnvironmentVariable(PasswordVariable, "smtp-secret-1");
        await using var smtp = new TestSmtpServer(("identity", "smtp-secret-1")).Start();
        var logs = new CapturedLogs();
        await using var server = fixture.StartServer(s => smtp.AddTo(s, PasswordVariable), logs);
        server.Start();
        var token = "tok-" + Guid.NewGuid().ToString("n");

        var id = await QueueResetAsync(server, token);

        var message = await smtp.WaitForAsync(ServerFixture<SqliteTestDatabase>.UserEmail);
        Assert.Equal("Reset your password · Contoso Cloud", message.Subject);
        Assert.Equal("no-reply@identity.test", message.From.Mailboxes.Single().Address);
        var link = TestSmtpServer.LinkIn(message, "/Account/ResetPassword");
        Assert.Equal($"{ServerFixture<SqliteTestDatabase>.Issuer}Account/ResetPassword?token={token}", link.AbsoluteUri);
        Assert.Contains("Contoso Cloud", message.TextBody, StringComparison.Ordinal);
        Assert.Contains($"href=\"{link.AbsoluteUri}\"", message.HtmlBody, StringComparison.Ordinal);
        var row = await WaitForRowAsync(server, id, r => r.SentAt is not null);
        Assert.Equal(("", (DateTimeOffset?)null), (row.ProtectedBody, row.NextAttemptAt)); // no link stays behind
        Assert.DoesNotContain(logs.Lines, l => l.Contains(token, StringComparison.Ordinal) || l.Contains("smtp-secret-1", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Contains($"Email {id} (password_reset) sent", StringComparison.Ordinal));
    }

    [Fact]
    public async Task MailServerDown_EmailWaitsThroughARestartAndIsSentWhenTheServerIsBack()
    {
        var smtp = new TestSmtpServer(); // not started: connections are refused
        long id;
        await using (var first = fixture.StartServer(s => smtp.AddTo(s)))
        {
            first.Start();
            id = await QueueResetAsync(first, "tok-" + Guid.NewGuid().ToString("n"));
            var waiting = await WaitForRowAsync(first, id, r => r.LastError is not null);
            Assert.Equal((0, (DateTimeOffset?)null), (waiting.Attempts, waiting.SentAt)); // a server that is down counts against no message
        }

        await using (smtp.Start())
        {
            await using var second = fixture.StartServer(s => smtp.AddTo(s));
            second.Start();
            await smtp.WaitForAsync(ServerFixture<SqliteTestDatabase>.UserEmail, TimeSpan.FromSeconds(20));
            var sent = await WaitForRowAsync(second, id, r => r.SentAt is not null);
            Assert.Equal(1, sent.Attempts);
            Assert.Single(smtp.Received);
        }
    }

    [Theory]
    [InlineData("Email:From", "", "Email:From")]
    [InlineData("Email:Host", "smtp.example.com", "Email:Security None")]
    [InlineData("Email:UserName", "identity", "Email:UserName and Email:PasswordEnvironmentVariable")]
    public async Task Start_InvalidEmailSettings_RefusesNamingTheKey(string key, string value, string named)
    {
        await using var smtp = new TestSmtpServer();
        await using var server = fixture.StartServer(s =>
        {
            smtp.AddTo(s);
            s[key] = value;
        });

        var refused = Assert.ThrowsAny<Exception>(() => server.Start());

        Assert.Contains(named, refused.ToString(), StringComparison.Ordinal);
    }

    private async Task<long> QueueResetAsync(IdentityServerHost server, string token)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var user = await db.Users.SingleAsync(u => u.Id == fixture.UserId);
        scope.ServiceProvider.GetRequiredService<IAccountEmails>().Link(UserLinkPurposes.PasswordReset, user, user.Email!, token, DateTimeOffset.UtcNow.AddMinutes(30));
        await db.SaveChangesAsync();
        return await db.EmailMessages.MaxAsync(m => m.Id);
    }

    private static async Task<EmailMessage> WaitForRowAsync(IdentityServerHost server, long id, Func<EmailMessage, bool> until)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            await using var scope = server.Services.CreateAsyncScope();
            var row = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().EmailMessages.AsNoTracking().SingleAsync(m => m.Id == id);
            if (until(row) || DateTime.UtcNow > deadline)
            {
                Assert.True(until(row), $"Email row {id}: attempts {row.Attempts}, error {row.LastError}, sent {row.SentAt}");
                return row;
            }

            await Task.Delay(100);
        }
    }
}
