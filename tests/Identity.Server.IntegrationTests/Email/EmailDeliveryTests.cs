using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Users;
using Identity.Region.Tests.Infrastructure;
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
    /// <summary>
    /// The variable the authority reads the mail server's password from at each send: one per test (the process's
    /// environment is shared by every test class running at the same time), so no other test's password is read.
    /// </summary>
    private readonly string _passwordVariable = "IDENTITY_TEST_SMTP_PASSWORD_" + Guid.NewGuid().ToString("n")[..8];

    [Fact]
    public async Task Queue_MailServerWithLogin_SentAsTextAndHtmlWithProductNameAndPublicLink()
    {
        Environment.SetEnvironmentVariable(_passwordVariable, "smtp-secret-1");
        await using var smtp = new TestSmtpServer(("identity", "smtp-secret-1")).Start();
        var logs = new CapturedLogs();
        await using var server = fixture.StartServer(s => smtp.AddTo(s, _passwordVariable), logs);
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
        await logs.WaitForAsync(l => l.Contains($"Email {id} (password_reset) sent", StringComparison.Ordinal)); // logged just after the row is marked
        Assert.DoesNotContain(logs.Lines, l => l.Contains(token, StringComparison.Ordinal) || l.Contains("smtp-secret-1", StringComparison.Ordinal));
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

    [Fact]
    public async Task StoppedDuringASend_EmailLetGoAtOnce_SentByTheNextStartWithoutWaitingForTheClaim()
    {
        // Arrange: a mail server that takes the connection and never greets, so the worker's send hangs (up to the
        // Email:Timeout of a minute), its row claimed for three times that.
        var smtp = new TestSmtpServer();
        var silent = new TcpListener(IPAddress.Loopback, smtp.Port);
        silent.Start();
        Socket? connection = null;
        long id;
        try
        {
            await using (var first = fixture.StartServer(s =>
                         {
                             smtp.AddTo(s);
                             s["Email:Timeout"] = "00:01:00";
                         }))
            {
                first.Start();
                id = await QueueResetAsync(first, "tok-" + Guid.NewGuid().ToString("n"));
                connection = await silent.AcceptSocketAsync().WaitAsync(TimeSpan.FromSeconds(20));
                await WaitForRowAsync(first, id, r => r.NextAttemptAt > DateTimeOffset.UtcNow.AddMinutes(1)); // claimed, sending

                // Act: the authority stops (a restart, a rollout) while the send hangs, its connection still open.
            }
        }
        finally
        {
            connection?.Dispose();
            silent.Stop();
        }

        // Assert: the row is due again at once, not in three minutes; the next start sends it.
        var released = await WaitForRowAsync(fixture.Server, id, _ => true);
        Assert.True(released.NextAttemptAt <= DateTimeOffset.UtcNow, $"claimed until {released.NextAttemptAt:O}");
        Assert.Equal((0, (DateTimeOffset?)null), (released.Attempts, released.SentAt));
        await using (smtp.Start())
        {
            await using var second = fixture.StartServer(s => smtp.AddTo(s));
            second.Start();
            await smtp.WaitForAsync(ServerFixture<SqliteTestDatabase>.UserEmail, TimeSpan.FromSeconds(20));
            await WaitForRowAsync(second, id, r => r.SentAt is not null);
        }
    }

    [Theory]
    [InlineData(false)] // STARTTLS (port 587 style)
    [InlineData(true)] // implicit TLS (port 465 style)
    public async Task Send_TlsMailServerRequiringLogin_SentOverTlsAndAuthenticated(bool implicitTls)
    {
        // Arrange: a CA made here, trusted for the mail server alone; the server offers a login only over TLS.
        Environment.SetEnvironmentVariable(_passwordVariable, "smtp-secret-2");
        using var ca = TestCertificates.Authority("CN=Mail Test CA");
        using var certificate = TestCertificates.Server(ca);
        await using var smtp = new TestSmtpServer(("identity", "smtp-secret-2"), certificate, implicitTls).Start();
        var logs = new CapturedLogs();
        await using var server = fixture.StartServer(s => TrustingCa(s, smtp, ca), logs);
        server.Start();
        var token = "tok-" + Guid.NewGuid().ToString("n");

        // Act
        var id = await QueueResetAsync(server, token);

        // Assert: it arrived, over TLS, authenticated as the configured user; nothing secret in the logs.
        await smtp.WaitForAsync(ServerFixture<SqliteTestDatabase>.UserEmail);
        Assert.Equal((true, "identity"), Assert.Single(smtp.Sessions));
        await WaitForRowAsync(server, id, r => r.SentAt is not null);
        Assert.DoesNotContain(logs.Lines, l => l.Contains(token, StringComparison.Ordinal) || l.Contains("smtp-secret-2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Send_TlsMailServerRefusesTheLogin_EmailWaitsAndThePasswordIsNotLogged()
    {
        Environment.SetEnvironmentVariable(_passwordVariable, "wrong-secret-3");
        using var ca = TestCertificates.Authority("CN=Mail Test CA");
        using var certificate = TestCertificates.Server(ca);
        await using var smtp = new TestSmtpServer(("identity", "right-secret-3"), certificate).Start();
        var logs = new CapturedLogs();
        await using var server = fixture.StartServer(s => TrustingCa(s, smtp, ca), logs);
        server.Start();

        var id = await QueueResetAsync(server, "tok-" + Guid.NewGuid().ToString("n"));

        // Assert: the server refused the login; the message waits (a server that refuses us counts against no message).
        var waiting = await WaitForRowAsync(server, id, r => r.LastError is not null);
        Assert.Equal((0, (DateTimeOffset?)null, true), (waiting.Attempts, waiting.SentAt, waiting.NextAttemptAt is not null));
        Assert.Contains("Authentication", waiting.LastError, StringComparison.Ordinal);
        Assert.Empty(smtp.Received);
        Assert.DoesNotContain(logs.Lines, l => l.Contains("wrong-secret-3", StringComparison.Ordinal) || l.Contains("right-secret-3", StringComparison.Ordinal));
        await DiscardAsync(server, id); // the next test's mail server is not to receive it
    }

    [Theory]
    [InlineData("another CA")]
    [InlineData("system roots")]
    [InlineData("another name")]
    public async Task Send_MailServerCertificateNotTrusted_RefusedAndTheEmailIsSentOnceTrusted(string why)
    {
        // Arrange: the mail server's certificate comes from a CA the authority was not told to trust (or none), or
        // names another host; the login would go over that connection.
        Environment.SetEnvironmentVariable(_passwordVariable, "smtp-secret-4");
        using var ca = TestCertificates.Authority("CN=Mail Test CA");
        using var otherCa = TestCertificates.Authority("CN=Another CA");
        var otherName = new SubjectAlternativeNameBuilder();
        otherName.AddDnsName("mail.other.test");
        using var certificate = TestCertificates.Server(ca, why == "another name" ? otherName : null);
        await using var smtp = new TestSmtpServer(("identity", "smtp-secret-4"), certificate).Start();
        var logs = new CapturedLogs();
        var token = "tok-" + Guid.NewGuid().ToString("n");
        long id;
        await using (var refusing = fixture.StartServer(s =>
                     {
                         TrustingCa(s, smtp, why == "another CA" ? otherCa : ca);
                         if (why == "system roots")
                         {
                             s.Remove("Email:CaCertificatePath");
                         }
                     }, logs))
        {
            refusing.Start();

            // Act
            id = await QueueResetAsync(refusing, token);

            // Assert: refused before any login or message; the row waits, counted against no attempt.
            var waiting = await WaitForRowAsync(refusing, id, r => r.LastError is not null);
            Assert.Equal((0, (DateTimeOffset?)null, true), (waiting.Attempts, waiting.SentAt, waiting.NextAttemptAt is not null));
            Assert.Empty(smtp.Received);
        }

        // Nothing lost: told to trust the right CA (and the server's name fixed), the authority sends the same email.
        if (why == "another name")
        {
            await smtp.StopAsync();
        }

        await using var fixedSmtp = why == "another name" ? new TestSmtpServer(("identity", "smtp-secret-4"), TestCertificates.Server(ca)).Start() : null;
        var mailServer = fixedSmtp ?? smtp;
        await using var trusting = fixture.StartServer(s => TrustingCa(s, mailServer, ca), logs);
        trusting.Start();
        var message = await mailServer.WaitForAsync(ServerFixture<SqliteTestDatabase>.UserEmail, TimeSpan.FromSeconds(20));
        Assert.Contains(token, message.TextBody, StringComparison.Ordinal);
        await WaitForRowAsync(trusting, id, r => r.SentAt is not null);
        Assert.DoesNotContain(logs.Lines, l => l.Contains(token, StringComparison.Ordinal) || l.Contains("smtp-secret-4", StringComparison.Ordinal));
    }

    /// <summary>The settings for <paramref name="smtp"/> with its login, trusting <paramref name="ca"/> (a PEM file) for it.</summary>
    private void TrustingCa(Dictionary<string, string?> settings, TestSmtpServer smtp, X509Certificate2 ca)
    {
        smtp.AddTo(settings, _passwordVariable);
        var path = Path.Combine(Path.GetTempPath(), $"mail-ca-{Guid.NewGuid():n}.pem");
        File.WriteAllText(path, ca.ExportCertificatePem());
        settings["Email:CaCertificatePath"] = path;
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

    private static async Task DiscardAsync(IdentityServerHost server, long id)
    {
        await using var scope = server.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().EmailMessages.Where(m => m.Id == id).ExecuteDeleteAsync();
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
