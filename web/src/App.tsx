/** Providers, the router, and what happens when the session ends. */
import { useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { Navigate, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { onUnauthenticated } from './api/client';
import { queryKeys } from './api/queryKeys';
import { RequireAuth, RequireRole, loginPath } from './auth/guards';
import { AppLayout } from './layout/AppLayout';
import { pageRoutes } from './routes';
import { LoginPage } from './pages/session/LoginPage';
import { NotFoundPage } from './pages/session/NotFoundPage';
import { RegisterPage } from './pages/session/RegisterPage';

/** A 401 from any request: the session expired or was ended; log in and come back. */
function SessionWatcher() {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  useEffect(
    () =>
      onUnauthenticated(() => {
        if (queryClient.getQueryData(queryKeys.me) === null) return;
        queryClient.setQueryData(queryKeys.me, null);
        if (!['/login', '/register'].includes(window.location.pathname)) {
          navigate(loginPath(window.location.pathname + window.location.search), { replace: true });
        }
      }),
    [queryClient, navigate, location],
  );
  return null;
}

export function App() {
  return (
    <>
      <SessionWatcher />
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="/register" element={<RegisterPage />} />
        <Route
          element={
            <RequireAuth>
              <AppLayout />
            </RequireAuth>
          }
        >
          <Route index element={<Navigate to="/workloads" replace />} />
          {pageRoutes.map((route) => (
            <Route
              key={route.path}
              path={route.path}
              element={<RequireRole roles={route.roles}>{route.element}</RequireRole>}
            />
          ))}
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </>
  );
}
