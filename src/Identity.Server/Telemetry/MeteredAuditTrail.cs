using Identity.Core.Audit;

namespace Identity.Server.Telemetry;

/// <summary>
/// The audit trail, counting the sign-in events it records (<see cref="AuthorityMetrics"/>): every sign-in outcome is
/// audited by whichever page decided it (password, passkey, second factor), so counting here counts each once, with the
/// same meaning as the audit row, and no page can forget the counter.
/// </summary>
public sealed class MeteredAuditTrail(AuditTrail inner, AuthorityMetrics metrics) : IAuditTrail
{
    public void Record(Actor actor, string eventType, string? subjectType, string? subjectId, Guid? accountId, object? details = null)
    {
        inner.Record(actor, eventType, subjectType, subjectId, accountId, details);
        switch (eventType)
        {
            case "signin.succeeded":
                metrics.SignIn("succeeded");
                break;
            case "signin.failed" or "signin.ip_refused" or "signin.mfa_failed":
                metrics.SignIn("failed");
                break;
            case "signin.locked_out":
                metrics.SignIn("locked_out");
                metrics.LockedOut();
                break;
        }
    }
}
