using System.Security.Cryptography.X509Certificates;

namespace Identity.Region.Tokens;

/// <summary>
/// The primary handler of an HttpClient whose connections present a token client's certificate: one connection pool
/// per certificate, so that after a rotation every request leaves on a connection made with the new certificate,
/// the one its new token is bound to (a pooled connection keeps the certificate of its handshake).
/// </summary>
internal sealed class ClientCertificateHandler(ClientCertificateSource certificates, X509Certificate2Collection? trustedServerCas) : HttpMessageHandler
{
    private readonly Lock _switch = new();
    private Pool? _pool;
    private Pool? _previous;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        PoolFor(certificates.Current).Invoker.SendAsync(request, cancellationToken);

    private Pool PoolFor(ClientCertificate certificate)
    {
        if (_pool is { } pool && ReferenceEquals(pool.Certificate, certificate))
        {
            return pool;
        }

        lock (_switch)
        {
            if (_pool is { } current && ReferenceEquals(current.Certificate, certificate))
            {
                return current;
            }

            // The pool before the previous one is closed; the previous one may still carry requests in flight.
            _previous?.Invoker.Dispose();
            _previous = _pool;
            _pool = new Pool(certificate, new HttpMessageInvoker(Connections(certificate), disposeHandler: true));
            return _pool;
        }
    }

    private SocketsHttpHandler Connections(ClientCertificate certificate) => new()
    {
        SslOptions =
        {
            ClientCertificateContext = certificate.Context,
            // No resumption: a resumed session shows the server the certificate of the handshake that made it (seen
            // on Linux across pools), which after a rotation is no longer the one the token is bound to.
            AllowTlsResume = false,
            CertificateChainPolicy = ClientCertificate.ServerChainPolicy(),
            RemoteCertificateValidationCallback = trustedServerCas is null ? null : ClientCertificate.ServerValidation(trustedServerCas),
        },
    };

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _pool?.Invoker.Dispose();
            _previous?.Invoker.Dispose();
        }

        base.Dispose(disposing);
    }

    private sealed record Pool(ClientCertificate Certificate, HttpMessageInvoker Invoker);
}
