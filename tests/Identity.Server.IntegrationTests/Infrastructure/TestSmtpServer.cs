using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MimeKit;
using SmtpServer;
using SmtpServer.Authentication;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// A real SMTP server (the SmtpServer package) on a loopback port of its own, in the test's process: the authority
/// sends to it over TCP with MailKit, exactly as to a production relay, and the test reads what arrived. It can be
/// stopped and started again on the same port (the mail server down, then back), can require a login, and can speak
/// TLS with a certificate the test made (STARTTLS, or implicit TLS from the first byte).
/// </summary>
public sealed class TestSmtpServer : IAsyncDisposable
{
    private readonly ConcurrentQueue<MimeMessage> _received = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly ConcurrentQueue<(bool Secure, string? User)> _sessions = new();
    private readonly (string User, string Password)? _login;
    private readonly X509Certificate2? _certificate;
    private readonly bool _implicitTls;
    private SmtpServer.SmtpServer? _server;
    private Task? _running;

    /// <param name="login">A user and password the server requires (checked by the server, refused otherwise).</param>
    /// <param name="certificate">The server's TLS certificate: STARTTLS is offered, and a login only after it.</param>
    /// <param name="implicitTls">TLS from the first byte (port 465 style) instead of STARTTLS.</param>
    public TestSmtpServer((string User, string Password)? login = null, X509Certificate2? certificate = null, bool implicitTls = false)
    {
        _login = login;
        _certificate = certificate;
        _implicitTls = implicitTls;
        Port = TestPorts.Next(); // kept while stopped: a port of its own, which nothing else is given meanwhile
    }

    public int Port { get; }

    public IReadOnlyCollection<MimeMessage> Received => _received.ToArray();

    /// <summary>For each message received: whether its connection was TLS, and the user it authenticated as.</summary>
    public IReadOnlyCollection<(bool Secure, string? User)> Sessions => _sessions.ToArray();

    /// <summary>The settings that point the authority at this server.</summary>
    public Dictionary<string, string?> Settings(string? passwordVariable = null) => new()
    {
        ["Email:Host"] = "127.0.0.1",
        ["Email:Port"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Email:Security"] = _certificate is null ? "None" : _implicitTls ? "Tls" : "StartTls",
        ["Email:From"] = "Identity <no-reply@identity.test>",
        ["Email:ProductName"] = "Contoso Cloud",
        ["Email:PollInterval"] = "00:00:00.100",
        ["Email:RetryDelay"] = "00:00:00.200",
        ["Email:MaxRetryDelay"] = "00:00:00.500",
        ["Email:UserName"] = _login?.User,
        ["Email:PasswordEnvironmentVariable"] = _login is null ? null : passwordVariable,
    };

    /// <summary>Adds <see cref="Settings"/> (those with a value) to a server's settings.</summary>
    public void AddTo(Dictionary<string, string?> settings, string? passwordVariable = null)
    {
        foreach (var (key, value) in Settings(passwordVariable).Where(e => e.Value is not null))
        {
            settings[key] = value;
        }
    }

    public TestSmtpServer Start()
    {
        var options = new SmtpServerOptionsBuilder().ServerName("localhost")
            .Endpoint(e =>
            {
                e.Endpoint(new IPEndPoint(IPAddress.Loopback, Port))
                    .AuthenticationRequired(_login is not null).AllowUnsecureAuthentication(_login is not null && _certificate is null);
                if (_certificate is not null)
                {
                    e.Certificate(_certificate).IsSecure(_implicitTls).SupportedSslProtocols(SslProtocols.Tls12 | SslProtocols.Tls13);
                }
            })
            .Build();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Store(this));
        if (_login is { } login)
        {
            services.Add(new Login(login.User, login.Password));
        }

        _server = new SmtpServer.SmtpServer(options, services);
        _running = _server.StartAsync(CancellationToken.None);
        return this;
    }

    /// <summary>Stops listening: connections are refused, as by a mail server that is down.</summary>
    public async Task StopAsync()
    {
        if (_server is null)
        {
            return;
        }

        _server.Shutdown();
        await _server.ShutdownTask.WaitAsync(TimeSpan.FromSeconds(10));
        await _running!;
        _server = null;
    }

    /// <summary>The first message to <paramref name="to"/> that arrives (or arrived), within <paramref name="timeout"/>.</summary>
    public async Task<MimeMessage> WaitForAsync(string to, TimeSpan? timeout = null, Func<MimeMessage, bool>? where = null) =>
        (await WaitForAsync(to, 1, timeout, where))[0];

    /// <summary>The first <paramref name="count"/> messages to <paramref name="to"/>, once they arrived (within <paramref name="timeout"/>).</summary>
    public async Task<IReadOnlyList<MimeMessage>> WaitForAsync(string to, int count, TimeSpan? timeout = null, Func<MimeMessage, bool>? where = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var found = _received.Where(m => m.To.Mailboxes.Any(b => string.Equals(b.Address, to, StringComparison.OrdinalIgnoreCase))
                && (where is null || where(m))).Take(count).ToList();
            if (found.Count == count)
            {
                return found;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
            {
                throw new TimeoutException($"{found.Count} of {count} emails to {to} arrived; received in all: {_received.Count}.");
            }
        }
    }

    /// <summary>The link in a message's plain-text body that leads to <paramref name="path"/>.</summary>
    public static Uri LinkIn(MimeMessage message, string path) =>
        new((message.TextBody ?? "").Split(' ', '\n', '\r').Single(w => w.StartsWith("http", StringComparison.Ordinal) && w.Contains(path, StringComparison.Ordinal)));

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _arrived.Dispose();
    }

    private sealed class Store(TestSmtpServer owner) : MessageStore
    {
        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction,
            ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            using var stream = new MemoryStream(buffer.ToArray());
            owner._sessions.Enqueue((context.Pipe.IsSecure, context.Authentication.IsAuthenticated ? context.Authentication.User : null));
            owner._received.Enqueue(await MimeMessage.LoadAsync(stream, cancellationToken));
            owner._arrived.Release();
            return SmtpResponse.Ok;
        }
    }

    private sealed class Login(string user, string password) : UserAuthenticator
    {
        public override Task<bool> AuthenticateAsync(ISessionContext context, string user1, string password1, CancellationToken cancellationToken) =>
            Task.FromResult(user1 == user && password1 == password);
    }
}
