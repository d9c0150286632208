using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Identity.Core.Data;
using Identity.Core.Email;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Identity.Server.Email;

/// <summary>
/// Sends the queued emails (<see cref="EmailMessage"/>) over SMTP with MailKit, one connection per round. A row is taken
/// by a conditional update of its due time, so replicas never send it twice at once. A refusal of one message (an SMTP
/// error reply) counts against that message, retried with doubling delays up to <see cref="EmailOptions.MaxAttempts"/>;
/// a mail server that cannot be reached counts against none: the round stops, the rows wait, and nothing is lost
/// however long it is down. Logs name the row and its kind, never the recipient, the body or a link.
/// </summary>
public sealed class EmailDelivery(
    IServiceScopeFactory scopes,
    IOptions<EmailOptions> options,
    IDataProtectionProvider protection,
    TimeProvider time,
    ILogger<EmailDelivery> logger) : BackgroundService
{
    private const int RoundSize = 20;
    private static readonly TimeSpan SentRetention = TimeSpan.FromDays(7);
    private readonly EmailOptions _options = options.Value;
    private TimeSpan _serverBackOff;
    private DateTimeOffset _nextCleanup;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RoundAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogError(e, "Email round failed");
            }

            try
            {
                await Task.Delay(_options.PollInterval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Sends what is due now; returns the number sent.</summary>
    internal async Task<int> RoundAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var now = time.GetUtcNow();
        await CleanUpAsync(db, now, cancellationToken);
        var due = await db.EmailMessages.AsNoTracking()
            .Where(m => m.NextAttemptAt != null && m.NextAttemptAt <= now)
            .OrderBy(m => m.Id).Take(RoundSize).ToListAsync(cancellationToken);
        if (due.Count == 0)
        {
            return 0;
        }

        var sent = 0;
        SmtpClient? client = null;
        try
        {
            foreach (var message in due)
            {
                // Taken for as long as one send may last; a replica that dies holding it only delays it. Once taken, what
                // became of it is recorded even while stopping (not the round's token): a send that went through must not
                // be sent again when the claim runs out, and one that did not must not wait for that.
                var claimedUntil = now + (_options.Timeout * 3);
                cancellationToken.ThrowIfCancellationRequested();
                if (await db.EmailMessages.Where(m => m.Id == message.Id && m.NextAttemptAt == message.NextAttemptAt)
                        .ExecuteUpdateAsync(m => m.SetProperty(x => x.NextAttemptAt, claimedUntil), CancellationToken.None) == 0)
                {
                    continue; // another replica took it
                }

                try
                {
                    client ??= await ConnectAsync(cancellationToken);
                    await client.SendAsync(Compose(message), cancellationToken);
                }
                catch (SmtpCommandException e) when (e.ErrorCode is not SmtpErrorCode.UnexpectedStatusCode)
                {
                    await RefusedAsync(db, message, e, CancellationToken.None);
                    continue;
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    // Stopping (a restart, a rollout) in the middle of this send: the claim is let go at once, so that the
                    // next replica or start sends it now rather than once the claim runs out (3 × Email:Timeout). Whether
                    // the mail server took it is unknown either way: the claim's end would send it again too.
                    await db.EmailMessages.Where(m => m.Id == message.Id && m.SentAt == null && m.NextAttemptAt == claimedUntil)
                        .ExecuteUpdateAsync(m => m.SetProperty(x => x.NextAttemptAt, message.NextAttemptAt), CancellationToken.None);
                    throw;
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    // The server, not the message: this one and the rest of the round wait, counted against none.
                    _serverBackOff = _serverBackOff == TimeSpan.Zero ? _options.RetryDelay : Min(_serverBackOff * 2, _options.MaxRetryDelay);
                    var retryAt = time.GetUtcNow() + _serverBackOff;
                    var ids = due.Select(m => m.Id).ToList();
                    var error = Describe(e);
                    await db.EmailMessages.Where(m => ids.Contains(m.Id) && m.SentAt == null && m.NextAttemptAt != null)
                        .ExecuteUpdateAsync(m => m.SetProperty(x => x.NextAttemptAt, retryAt).SetProperty(x => x.LastError, error), CancellationToken.None);
                    logger.LogWarning("Mail server unavailable ({Error}); {Count} emails wait until {RetryAt:O}", error, ids.Count, retryAt);
                    client?.Dispose();
                    client = null;
                    return sent;
                }

                var at = time.GetUtcNow();
                await db.EmailMessages.Where(m => m.Id == message.Id).ExecuteUpdateAsync(m => m
                    .SetProperty(x => x.SentAt, at).SetProperty(x => x.NextAttemptAt, (DateTimeOffset?)null)
                    .SetProperty(x => x.ProtectedBody, "").SetProperty(x => x.LastError, (string?)null)
                    .SetProperty(x => x.Attempts, x => x.Attempts + 1), CancellationToken.None);
                _serverBackOff = TimeSpan.Zero;
                sent++;
                logger.LogInformation("Email {EmailId} ({Kind}) sent", message.Id, message.Kind);
            }
        }
        finally
        {
            if (client is not null)
            {
                if (client.IsConnected)
                {
                    try
                    {
                        await client.DisconnectAsync(quit: true, cancellationToken);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        // Sent is sent: a QUIT that fails changes nothing.
                    }
                }

                client.Dispose();
            }
        }

        return sent;
    }

    private async Task RefusedAsync(AuthorityDbContext db, EmailMessage message, SmtpCommandException e, CancellationToken cancellationToken)
    {
        var attempts = message.Attempts + 1;
        var error = Describe(e);
        DateTimeOffset? retryAt = attempts >= _options.MaxAttempts
            ? null
            : time.GetUtcNow() + Min(_options.RetryDelay * Math.Pow(2, attempts - 1), _options.MaxRetryDelay);
        await db.EmailMessages.Where(m => m.Id == message.Id).ExecuteUpdateAsync(m => m
            .SetProperty(x => x.Attempts, attempts).SetProperty(x => x.NextAttemptAt, retryAt).SetProperty(x => x.LastError, error), cancellationToken);
        if (retryAt is null)
        {
            logger.LogError("Email {EmailId} ({Kind}) given up after {Attempts} refusals: {Error}", message.Id, message.Kind, attempts, error);
        }
        else
        {
            logger.LogWarning("Email {EmailId} ({Kind}) refused ({Error}); retried at {RetryAt:O}", message.Id, message.Kind, error, retryAt);
        }
    }

    private async Task<SmtpClient> ConnectAsync(CancellationToken cancellationToken)
    {
        var client = new SmtpClient { Timeout = (int)_options.Timeout.TotalMilliseconds };
        try
        {
            if (_options.CaCertificatePath is { } ca)
            {
                var roots = X509CertificateLoader.LoadCertificateFromFile(ca);
                client.ServerCertificateValidationCallback = (_, certificate, _, errors) => Trusted(certificate, errors, roots);
            }

            await client.ConnectAsync(_options.Host!, _options.Port, _options.Security switch
            {
                EmailSecurity.Tls => SecureSocketOptions.SslOnConnect,
                EmailSecurity.None => SecureSocketOptions.None,
                _ => SecureSocketOptions.StartTls, // refuses a server that does not offer it
            }, cancellationToken);
            if (_options.UserName is { } user)
            {
                await client.AuthenticateAsync(user, Environment.GetEnvironmentVariable(_options.PasswordEnvironmentVariable!) ?? "", cancellationToken);
            }

            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>The server's chain must end at the configured CA (and only there), and name the host.</summary>
    private static bool Trusted(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2 root)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }

    private MimeMessage Compose(EmailMessage message)
    {
        var (text, html) = OutgoingEmail.Read(protection, message);
        var mime = new MimeMessage { Subject = message.Subject };
        mime.From.Add(MailboxAddress.Parse(_options.From!));
        mime.To.Add(MailboxAddress.Parse(message.To));
        mime.Body = new BodyBuilder { TextBody = text, HtmlBody = html }.ToMessageBody();
        return mime;
    }

    /// <summary>Sent rows (their bodies already gone) and given-up rows are kept a week for the admin, then deleted.</summary>
    private async Task CleanUpAsync(AuthorityDbContext db, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (now < _nextCleanup)
        {
            return;
        }

        _nextCleanup = now + TimeSpan.FromHours(1);
        var before = now - SentRetention;
        await db.EmailMessages.Where(m => m.NextAttemptAt == null && m.CreatedAt < before).ExecuteDeleteAsync(cancellationToken);
    }

    /// <summary>The exception's type and the server's reply, never the message's content.</summary>
    private static string Describe(Exception e)
    {
        var text = $"{e.GetType().Name}: {e.Message}";
        return text.Length <= 1_000 ? text : text[..1_000];
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
